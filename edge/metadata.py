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


@dataclass(frozen=True)
class ModelMeta:
    """What the device needs to know about a model beyond the graph itself.

    input_hw: (H, W) the model was trained at; None = read from the model's input shape.
    scale, offset: input normalization x = pixel * scale + offset.
    threshold: mask probability threshold.
    min_area: minimum connected-component area in model-input pixels (resolution independent).
    presence_threshold: when the model has a presence output, masks are emptied below it.
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
    extra: dict[str, Any] = field(default_factory=dict)


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
}


def validate_meta_dict(d: Any, where: str = "sidecar") -> dict[str, Any]:
    """``d`` if it is a valid sidecar object, else ModelError naming ``where`` and the field."""
    fix = "fix it, or delete it to run with the documented defaults"
    if not isinstance(d, dict):
        raise ModelError(f"{where}: expected a JSON object {{...}}, got {type(d).__name__}; {fix}")
    for name, (ok, expected) in FIELD_RULES.items():
        value = d.get(name)
        if value is not None and not ok(value):
            raise ModelError(f"{where}: field {name!r} is {json.dumps(value)[:60]}; expected "
                             f"{expected}; {fix}")
    return d


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
