"""Model metadata: the sidecar JSON next to a model (``model.tflite`` -> ``model.json``).

edge-convert writes it; edge-run reads it. Every field has a documented default, so a bare
model without a sidecar still runs (input size then comes from the model itself).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edge.preprocess import DEFAULT_OFFSET, DEFAULT_SCALE

DEFAULT_THRESHOLD = 0.5  # probability above which a pixel is nerve
DEFAULT_MIN_AREA = 0  # connected components smaller than this (model-input pixels) are dropped
SIDECAR_SUFFIX = ".json"


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


def meta_from_dict(d: dict[str, Any]) -> ModelMeta:
    known = {f.name for f in fields(ModelMeta)} - {"extra"}
    kwargs = {k: d[k] for k in known if k in d and d[k] is not None}
    if "input_hw" in kwargs:
        kwargs["input_hw"] = tuple(int(v) for v in kwargs["input_hw"])
    extra = dict(d.get("extra", {}))
    extra.update({k: v for k, v in d.items() if k not in known and k != "extra"})
    return ModelMeta(**kwargs, extra=extra)


def meta_to_dict(meta: ModelMeta) -> dict[str, Any]:
    d = asdict(meta)
    if d["input_hw"] is not None:
        d["input_hw"] = list(d["input_hw"])
    return d


def load_meta(model_path: str | os.PathLike) -> ModelMeta:
    """The sidecar next to the model, or defaults when there is none."""
    side = sidecar_path(model_path)
    if not side.exists():
        return ModelMeta(name=Path(model_path).stem)
    with open(side, encoding="utf-8") as f:
        return meta_from_dict(json.load(f))


def _default_file_mode() -> int:
    """The mode open() would give a new file: 0666 minus the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON through a temp file + rename: a killed run never leaves half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=False)
            f.write("\n")
        os.chmod(tmp, _default_file_mode())  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_meta(model_path: str | os.PathLike, meta: ModelMeta) -> Path:
    """Write the sidecar for model_path (sha256 of the model file filled in)."""
    d = meta_to_dict(meta)
    d["sha256"] = sha256_file(model_path)
    side = sidecar_path(model_path)
    write_json_atomic(side, d)
    return side
