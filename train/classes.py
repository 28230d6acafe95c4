"""The class list of a multi-structure model (CLASSES.md): id, name, colour, safety.

NumPy-free and TensorFlow-free: the trainer, the converter and the benchmarks read it. A run
trained with ``--classes 1,2 --class-names nerve,vessel`` records this list in its
config.json; edge-convert copies it into the sidecar's ``"classes"``. No list = the nerve-only
model (one channel, the ``nerve_class`` id), as before.
"""

from __future__ import annotations

from typing import Any

from edge.errors import UserInputError

MAX_ID = 255  # class ids are uint8 pixel values in masks and saved class-id PNGs
NERVE_COLOR = "#ffd400"
SAFETY_COLOR = "#ff3030"
# Structures a needle must avoid (ScanNav's "safety structures"): safety by default.
SAFETY_NAMES = frozenset({"vessel", "artery", "vein", "pleura", "peritoneum", "bone"})
OTHER_COLORS = ("#00b0ff", "#b040ff", "#40ff80", "#ff8c00")  # further classes, in order


def default_color(name: str, index: int) -> str:
    if name == "nerve":
        return NERVE_COLOR
    if name in SAFETY_NAMES:
        return SAFETY_COLOR
    return OTHER_COLORS[index % len(OTHER_COLORS)]


def parse_classes(ids: str, names: str | None = None) -> tuple[dict[str, Any], ...]:
    """``"1,2"`` + ``"nerve,vessel"`` -> the CLASSES.md list. Names default to class<id>."""
    try:
        id_list = [int(v) for v in ids.split(",") if v.strip()]
    except ValueError as e:
        raise UserInputError(f"--classes {ids!r}: give class ids as integers, e.g. 1,2") from e
    name_list = [v.strip() for v in names.split(",")] if names else [f"class{i}" for i in id_list]
    if len(name_list) != len(id_list):
        raise UserInputError(f"--class-names gives {len(name_list)} names for {len(id_list)} "
                             f"--classes ids; give one name per id, e.g. nerve,vessel")
    classes = tuple({"id": i, "name": n, "color": default_color(n, k),
                     "safety": n in SAFETY_NAMES}
                    for k, (i, n) in enumerate(zip(id_list, name_list, strict=True)))
    check_classes(classes, "--classes")
    return classes


def check_classes(classes, where: str) -> None:
    """UserInputError naming ``where`` for an empty list, bad or repeated ids or names."""
    if not classes:
        raise UserInputError(f"{where}: the class list is empty; give at least one class id")
    ids = [c.get("id") for c in classes]
    bad = [i for i in ids if not isinstance(i, int) or not 1 <= i <= MAX_ID]
    if bad:
        raise UserInputError(f"{where}: class ids must be 1..{MAX_ID} (0 = background), "
                             f"got {bad}")
    names = [c.get("name") for c in classes]
    for what, values in (("ids", ids), ("names", names)):
        if len(set(values)) != len(values):
            raise UserInputError(f"{where}: repeated class {what} {values}; each must be unique")


def nerve_only(nerve_class: int = 1) -> tuple[dict[str, Any], ...]:
    """The implicit list of a nerve-only model (CLASSES.md's default, id = the nerve class)."""
    return ({"id": int(nerve_class), "name": "nerve", "color": "#00ff00", "safety": False},)


def class_ids(classes) -> tuple[int, ...]:
    return tuple(int(c["id"]) for c in classes)


def nerve_channel(classes, nerve_class: int = 1) -> int | None:
    """Index of the nerve channel: the class with the nerve id, else the one named nerve."""
    for k, c in enumerate(classes):
        if int(c["id"]) == nerve_class:
            return k
    names = [c["name"] for c in classes]
    return names.index("nerve") if "nerve" in names else None
