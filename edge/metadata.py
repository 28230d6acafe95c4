"""Model metadata: the sidecar JSON next to a model (``model.tflite`` -> ``model.json``).

edge-convert writes it; edge-run reads it. Every field has a documented default, so a bare
model without a sidecar still runs (input size then comes from the model itself). A sidecar
that is there is validated (JSON object, known fields of the right type and range): a bad one
is a ModelError naming the file and the field, never a traceback. Its ``sha256`` is the
model's provenance: ``check_sha256`` tells whether the model file is the one it describes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edge.errors import ModelError
from edge.fsutil import write_json_atomic  # re-exported: callers import it from here
from edge.preprocess import DEFAULT_OFFSET, DEFAULT_SCALE

DEFAULT_THRESHOLD = 0.5  # probability above which a pixel is nerve
DEFAULT_MIN_AREA = 0  # connected components smaller than this (model-input pixels) are dropped
SIDECAR_SUFFIX = ".json"
MAX_INPUT_SIDE = 8192  # px; a larger model input is a typo, not a model for a board
SHA256_RE = re.compile(r"[0-9a-f]{64}")
COLOR_RE = re.compile(r"#[0-9a-fA-F]{6}")  # "#rrggbb", RGB as in CSS
MIN_CLASS_ID, MAX_CLASS_ID = 1, 255  # 0 is the background in class-id masks (uint8 PNG)
CLASS_KEYS = ("id", "name", "color", "safety", "threshold", "min_area")


@dataclass(frozen=True)
class ClassSpec:
    """One structure the model outlines (the sidecar's ``classes`` list, in channel order).

    id: 1..255, the pixel value in class-id masks (0 = background).
    color: "#rrggbb" (RGB) for the overlay, the legend and the clinic view.
    safety: a structure the needle must avoid: drawn over the others, drives the centre-line
            warning (edge.postprocess.near_centre_line).
    threshold, min_area: this class's own values; None = the sidecar's ``threshold`` /
            ``min_area``.
    """

    id: int
    name: str
    color: str
    safety: bool = False
    threshold: float | None = None
    min_area: int | None = None

    @property
    def bgr(self) -> tuple[int, int, int]:
        return color_bgr(self.color)


def color_bgr(color: str) -> tuple[int, int, int]:
    """"#rrggbb" -> an OpenCV (B, G, R) triple."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return b, g, r


# The nerve's colour when the sidecar names none: amber, which stands out on gray ultrasound.
# THE one place: the overlay draws it, status.json and the clinic view's swatch carry it, and
# the browser runner (edge/view/web/app/app.js NERVE_COLOR, checked equal by a test) draws it.
NERVE_COLOR = "#ffc800"
# No "classes" in the sidecar: one nerve class (today's single-output models).
DEFAULT_CLASSES = (ClassSpec(id=1, name="nerve", color=NERVE_COLOR, safety=False),)


@dataclass(frozen=True)
class ModelMeta:
    """What the device needs to know about a model beyond the graph itself.

    input_hw: (H, W) the model was trained at; None = read from the model's input shape.
    scale, offset: input normalization x = pixel * scale + offset.
    threshold: mask probability threshold.
    min_area: minimum connected-component area in model-input pixels (resolution independent).
    presence_threshold: when the model has a presence output, masks are emptied below it.
    classes: the structures of a multi-class model, in output-channel order (ClassSpec, or
             sidecar dicts, validated); None = the nerve-only default (DEFAULT_CLASSES).
    extra: everything else in the sidecar (training summary, metrics, versions), kept as-is.
    """

    name: str = "unnamed"
    version: str = "0"
    input_hw: tuple[int, int] | None = None
    scale: float = DEFAULT_SCALE
    offset: float = DEFAULT_OFFSET
    threshold: float = DEFAULT_THRESHOLD
    min_area: int = DEFAULT_MIN_AREA
    presence_threshold: float = 0.5
    sha256: str | None = None
    classes: tuple[ClassSpec, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.classes is not None:  # sidecar dicts (or ClassSpecs) -> validated ClassSpecs
            object.__setattr__(self, "classes", parse_classes(
                [c if isinstance(c, dict) else asdict(c) for c in self.classes]))

    @property
    def class_list(self) -> tuple[ClassSpec, ...]:
        """The classes in channel order; the nerve-only default when the sidecar has none."""
        return self.classes or DEFAULT_CLASSES


def sidecar_path(model_path: str | os.PathLike) -> Path:
    return Path(model_path).with_suffix(SIDECAR_SUFFIX)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _hw_ok(v: Any) -> bool:
    return (isinstance(v, list) and len(v) == 2
            and all(_is_int(d) and 0 < d <= MAX_INPUT_SIDE for d in v))


# field -> (is the value valid, what a valid value looks like). None is "use the default".
FIELD_RULES = {
    "name": (lambda v: isinstance(v, str), "a string"),
    "version": (lambda v: isinstance(v, (str, int)) and not isinstance(v, bool),
                'a string such as "1"'),
    "input_hw": (_hw_ok, f"[H, W] with whole numbers from 1 to {MAX_INPUT_SIDE}"),
    "scale": (lambda v: _is_number(v) and v > 0, "a number > 0, e.g. 0.00392 (1/255)"),
    "offset": (_is_number, "a finite number, e.g. 0.0"),
    "threshold": (lambda v: _is_number(v) and 0 < v < 1, "a probability between 0 and 1"),
    "min_area": (lambda v: _is_int(v) and v >= 0, "a whole number of pixels >= 0"),
    "presence_threshold": (lambda v: _is_number(v) and 0 <= v <= 1, "a probability 0..1"),
    "sha256": (lambda v: isinstance(v, str) and SHA256_RE.fullmatch(v) is not None,
               "64 lowercase hex digits (sha256sum of the model file)"),
    "extra": (lambda v: isinstance(v, dict), "a JSON object"),
    "classes": (lambda v: isinstance(v, list) and 0 < len(v) <= MAX_CLASS_ID,
                f"a list of 1 to {MAX_CLASS_ID} class objects "
                '[{"id": 1, "name": "nerve", "color": "#ffd400", "safety": false}, ...]'),
}
# classes[i].<key> -> (is the value valid, what a valid value looks like); None = absent.
CLASS_RULES = {
    "id": (lambda v: _is_int(v) and MIN_CLASS_ID <= v <= MAX_CLASS_ID,
           f"a whole number from {MIN_CLASS_ID} to {MAX_CLASS_ID} (0 is the background)"),
    "name": (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string"),
    "color": (lambda v: isinstance(v, str) and COLOR_RE.fullmatch(v) is not None,
              'a colour "#rrggbb", e.g. "#ff3030"'),
    "safety": (lambda v: isinstance(v, bool), "true or false"),
    "threshold": FIELD_RULES["threshold"],
    "min_area": FIELD_RULES["min_area"],
}
REQUIRED_CLASS_KEYS = ("id", "name", "color")


def _bad_field(where: str, name: str, value: Any, expected: str) -> ModelError:
    fix = "fix it, or delete it to run with the documented defaults"
    return ModelError(f"{where}: field {name!r} is {json.dumps(value)[:60]}; expected "
                      f"{expected}; {fix}")


def validate_meta_dict(d: Any, where: str = "sidecar") -> dict[str, Any]:
    """``d`` if it is a valid sidecar object, else ModelError naming ``where`` and the field."""
    fix = "fix it, or delete it to run with the documented defaults"
    if not isinstance(d, dict):
        raise ModelError(f"{where}: expected a JSON object {{...}}, got {type(d).__name__}; {fix}")
    for name, (ok, expected) in FIELD_RULES.items():
        value = d.get(name)
        if value is not None and not ok(value):
            raise _bad_field(where, name, value, expected)
    if d.get("classes") is not None:
        parse_classes(d["classes"], where)
    return d


def _check_class(i: int, c: Any, where: str) -> None:
    if not isinstance(c, dict):
        raise _bad_field(where, f"classes[{i}]", c, 'an object {"id": .., "name": .., '
                         '"color": "#rrggbb", "safety": false}')
    for key in c:
        if key not in CLASS_RULES:
            raise _bad_field(where, f"classes[{i}].{key}", c[key],
                             f"no such key (known: {', '.join(CLASS_KEYS)})")
    for key, (ok, expected) in CLASS_RULES.items():
        value = c.get(key)
        if value is None and key in REQUIRED_CLASS_KEYS:
            raise _bad_field(where, f"classes[{i}].{key}", value, expected)
        if value is not None and not ok(value):
            raise _bad_field(where, f"classes[{i}].{key}", value, expected)


def parse_classes(value: Any, where: str = "sidecar") -> tuple[ClassSpec, ...]:
    """The sidecar's ``classes`` list as ClassSpecs, in channel order; ModelError naming
    ``where`` and the field (``classes[1].color``) for a bad entry or a repeated id/name."""
    ok, expected = FIELD_RULES["classes"]
    if not ok(value):
        raise _bad_field(where, "classes", value, expected)
    seen: dict[str, set] = {"id": set(), "name": set()}
    for i, c in enumerate(value):
        _check_class(i, c, where)
        for key in seen:
            if c[key] in seen[key]:
                raise _bad_field(where, f"classes[{i}].{key}", c[key],
                                 f"a {key} of its own (an earlier class has this one)")
            seen[key].add(c[key])
    return tuple(ClassSpec(**{k: v for k, v in c.items() if v is not None}) for c in value)


def meta_from_dict(d: dict[str, Any], where: str = "sidecar") -> ModelMeta:
    """A ModelMeta from a sidecar dict, validated first (ModelError naming ``where``)."""
    validate_meta_dict(d, where)
    known = {f.name for f in fields(ModelMeta)} - {"extra"}
    kwargs = {k: d[k] for k in known if k in d and d[k] is not None}
    if "input_hw" in kwargs:
        kwargs["input_hw"] = tuple(int(v) for v in kwargs["input_hw"])
    if "version" in kwargs:
        kwargs["version"] = str(kwargs["version"])
    extra = dict(d.get("extra") or {})
    extra.update({k: v for k, v in d.items() if k not in known and k != "extra"})
    return ModelMeta(**kwargs, extra=extra)


def meta_to_dict(meta: ModelMeta) -> dict[str, Any]:
    d = asdict(meta)
    if d["input_hw"] is not None:
        d["input_hw"] = list(d["input_hw"])
    if d["classes"] is None:
        del d["classes"]  # a nerve-only sidecar stays as it was
    else:
        d["classes"] = [{k: v for k, v in c.items() if v is not None} for c in d["classes"]]
    return d


def read_sidecar(side: Path) -> Any:
    """The parsed JSON of ``side``; ModelError (one line, the file and the fix) otherwise."""
    fix = "fix it, or delete it to run with the documented defaults"
    try:
        text = side.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError(f"sidecar {side}: cannot read it ({getattr(e, 'strerror', None) or e})"
                         f"; {fix}") from None
    if not text.strip():
        raise ModelError(f"sidecar {side} is empty; {fix}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelError(f"sidecar {side} is not valid JSON ({e.msg} at line {e.lineno}, "
                         f"column {e.colno}); {fix}") from None


def load_meta(model_path: str | os.PathLike) -> ModelMeta:
    """The validated sidecar next to the model, or defaults when there is none."""
    side = sidecar_path(model_path)
    if not side.exists():
        return ModelMeta(name=Path(model_path).stem)
    return meta_from_dict(read_sidecar(side), where=f"sidecar {side}")


def low_dice_warning(meta: ModelMeta) -> str | None:
    """One line when the sidecar says the model was written below edge-convert's Dice floor
    (forced with --allow-low-dice: ``extra.gate.below_min_dice``), naming its Dice; else None."""
    gate = meta.extra.get("gate")
    if not isinstance(gate, dict) or not gate.get("below_min_dice"):
        return None
    dice = (meta.extra.get("validation") or {}).get("per_image_dice")
    floor = gate.get("min_dice")
    measured = (f"per-image Dice {dice:.4f}" if _is_number(dice) else "its Dice")
    below = f" < --min-dice {floor:g}" if _is_number(floor) else " below --min-dice"
    return (f"converted below the Dice floor, forced with --allow-low-dice ({measured}{below} "
            f"on its held-out frames): a trial model, not validated; convert one that passes "
            f"the gate before relying on it")


def check_sha256(model_path: str | os.PathLike, meta: ModelMeta,
                 allow_mismatch: bool = False) -> tuple[str, str]:
    """(sha256 of the model file, status): "ok", "no sha256 in the sidecar", or "mismatch"
    when ``allow_mismatch``; a mismatch otherwise raises ModelError (the file is not the model
    its sidecar describes: a clinic's audit trail would be wrong)."""
    actual = sha256_file(model_path)
    if meta.sha256 is None:
        return actual, "no sha256 in the sidecar"
    if meta.sha256 == actual:
        return actual, "ok"
    if allow_mismatch:
        return actual, "mismatch"
    side = sidecar_path(model_path)
    raise ModelError(
        f"{Path(model_path).name}: sha256 {actual[:12]}... does not match its sidecar {side} "
        f"({meta.sha256[:12]}...): use the sidecar written with this model, or pass "
        f"--allow-sha256-mismatch to run it anyway (recorded in the report)"
    )


def write_meta(model_path: str | os.PathLike, meta: ModelMeta) -> Path:
    """Write the sidecar for model_path (sha256 of the model file filled in)."""
    d = meta_to_dict(meta)
    d["sha256"] = sha256_file(model_path)
    side = sidecar_path(model_path)
    write_json_atomic(side, d)
    return side
