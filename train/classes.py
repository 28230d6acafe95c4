"""``edge-train --classes``: the class list of a multi-structure model (CLASSES.md).

One class-list type for the whole kit: edge.model.metadata.ClassSpec, parsed and validated by
edge.model.metadata.parse_classes, coloured from its one colour table. A run records the list
in its config.json (as the sidecar writes it: ``class_dicts``); edge-convert copies it into
the sidecar's ``"classes"``. No list = the nerve-only model: one class (the ``nerve_class``
id), not a second path. NumPy-free and TensorFlow-free.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from edge.errors import UserInputError
from edge.model.metadata import DEFAULT_CLASSES, class_dicts, classes_from_flags


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
    if not id_list:
        raise UserInputError("--classes: the class list is empty; give at least one class id")
    return class_dicts(classes_from_flags(id_list, name_list))


def nerve_only(nerve_class: int = 1) -> tuple[dict[str, Any], ...]:
    """The implicit list of a nerve-only model: the one nerve class, id = the nerve class."""
    return class_dicts((replace(DEFAULT_CLASSES[0], id=int(nerve_class)),))


def class_ids(classes) -> tuple[int, ...]:
    return tuple(int(c["id"]) for c in classes)


def nerve_channel(classes, nerve_class: int = 1) -> int | None:
    """Index of the nerve channel: the class with the nerve id, else the one named nerve."""
    for k, c in enumerate(classes):
        if int(c["id"]) == nerve_class:
            return k
    names = [c["name"] for c in classes]
    return names.index("nerve") if "nerve" in names else None
