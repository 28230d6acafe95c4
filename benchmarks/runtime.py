"""Open any model file as an edge Backend, and make a realistic input for it.

.tflite and .onnx go through edge.model.backends (exactly what the device runs); Keras files through
train.modelio.KerasBackend (TensorFlow, imported only then): one way to open every format,
shared with edge-train and edge-convert.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from edge.errors import ModelError
from edge.fsutil import model_format
from edge.model.preprocess import PreprocessConfig, normalize

INPUT_SEED = 0  # fixed random frame: every model and repeat sees the same input
# Runtime modules imported before timing, so "init" is model load + allocation only.
RUNTIME_MODULES = {
    "tflite": ("edge.model.backends",),
    "onnx": ("edge.model.backends", "onnxruntime"),
    "keras": ("train", "tensorflow"),
}


def resolve_backend(path: str | Path, backend: str | None = None) -> str:
    """The backend that runs this file: its format's runtime unless one is named."""
    return backend or model_format(path)


def preimport(backend: str) -> None:
    for name in RUNTIME_MODULES.get(backend, ()):
        importlib.import_module(name)


def open_model(path: str | Path, backend: str | None = None, threads: int | None = None):
    """A Backend (run(x) -> list of float32 arrays; input_hw, input_channels, name)."""
    from train.modelio import open_model as open_any

    path = check_model_path(path)
    return open_any(path, resolve_backend(path, backend), threads)


def check_model_path(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path} does not exist; pass the path of a .tflite, .onnx or .keras "
                         "model")
    return path


def preprocess_config(model, model_path: str | Path) -> PreprocessConfig:
    """The edge pre-processing for this model: its input size and sidecar normalization."""
    from train.modelio import model_meta, seg_model

    return seg_model(model, model_meta(model_path)).settings.pre


def synthetic_input(model, model_path: str | Path) -> np.ndarray:
    """A fixed random gray frame, normalized the way the device would (1, H, W, C) float32."""
    cfg = preprocess_config(model, model_path)
    rng = np.random.default_rng(INPUT_SEED)
    gray = rng.integers(0, 256, size=cfg.input_hw, dtype=np.uint8)
    return normalize(gray, cfg)
