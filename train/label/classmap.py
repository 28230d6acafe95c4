"""Names in a label file -> the model's class ids: the model's class names by default, or
``--class-map NAME=ID,...`` (e.g. CVAT's "Nerve" or another tool's "n. medianus")."""

from __future__ import annotations

from train.label.frames import LabelError
from train.label.predict import model_classes


def parse_class_map(text: str) -> dict[str, int]:
    """"nerve=1,vessel=2" -> {"nerve": 1, "vessel": 2}; LabelError on a bad item."""
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, sep, value = item.rpartition("=")
        if not sep or not name.strip() or not value.strip().isdigit() \
                or not 0 < int(value) <= 255:
            raise LabelError(f"--class-map {text!r}: use NAME=ID pairs with ids 1 to 255, "
                             f"e.g. nerve=1,vessel=2")
        out[name.strip()] = int(value)
    return out


def class_ids(model: str, class_map: str | None) -> dict[str, int]:
    """Label name -> class id: --class-map when given, else the model's classes."""
    if class_map:
        return parse_class_map(class_map)
    return {c.name: c.id for c in model_classes(model)}


def safety_ids(model: str) -> frozenset[int]:
    return frozenset(c.id for c in model_classes(model) if c.safety)


def lookup(names: dict[str, int], label: str, where: str) -> int:
    """The id of ``label`` (exact, then case-insensitive); LabelError naming it otherwise."""
    if label in names:
        return names[label]
    folded = {k.casefold(): v for k, v in names.items()}
    if label.casefold() in folded:
        return folded[label.casefold()]
    raise LabelError(f"{where}: label {label!r} is none of the model's classes "
                     f"({', '.join(names)}): map it with --class-map {label}=ID")
