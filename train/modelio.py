"""Every model format opened one way, as an edge Backend, with the settings it is used with.

    model = open_seg_model("runs/unet", Overrides(threshold=None))  # any format -> SegModel
    ev = edge.model.evaluate.score(model, frames)          # its own resolved settings
    backend = open_model("runs/unet")                      # just the Backend (latency)

.tflite and .onnx go through edge.model.backends (exactly what the device runs); Keras files through
KerasBackend below, the one way to run a Keras model in this repository (training
validation, edge-train eval, the edge-convert gate and edge-bench all use it). TensorFlow is
imported only when a Keras model is opened, so benchmarks of device formats run without it.

Settings: the model's sidecar (``model.json`` next to a .tflite/.onnx) gives normalization,
ROI, threshold, min area and presence threshold; a Keras model of a run folder takes them from
the run's config.json (``config_meta``: the sidecar edge-convert will write); explicit values
(command-line flags) win over both. One resolver decides: edge.model.settings.resolve.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge.deps import TF_IMPORT_NOISE, native_stderr_without, require, tensorflow_is_quiet
from edge.errors import ModelError
from edge.fsutil import model_format
from edge.model.metadata import ModelMeta, load_meta, sidecar_path
from edge.model.segmodel import SegModel
from edge.model.settings import Overrides, resolve
from train.config import RUN_MODEL, run_of

KERAS_BATCH = 32  # frames per Keras call while scoring (a batch-1 TFLite/ONNX runs one by one)


def import_tensorflow(threads: int | None = None):
    """TensorFlow with tf_keras selected (``import train`` sets the switch first); a missing
    install is one line with the command that installs it. ``threads`` applies only before
    TensorFlow's runtime starts."""
    import train  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow loads)

    quiet = tensorflow_is_quiet() and "tensorflow" not in sys.modules
    with native_stderr_without(TF_IMPORT_NOISE) if quiet else contextlib.nullcontext():
        tf = require("tensorflow")
        require("tf_keras")
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # already running (library use, tests): keep its setting
            pass
    return tf


def keras_file(path: str | os.PathLike) -> Path:
    """The Keras file behind MODEL: a run folder's model.keras, or the file itself."""
    path = Path(path)
    if path.is_dir():
        inner = path / RUN_MODEL
        if not inner.is_file():
            raise ModelError(f"{path}: a folder without {RUN_MODEL}; pass an edge-train run "
                             "folder or a .keras file")
        return inner
    if not path.is_file():
        raise ModelError(f"{path}: no such model file; pass the model.keras written by "
                         "edge-train (or its run folder)")
    if model_format(path) != "keras":
        raise ModelError(f"{path}: not a Keras model (suffix {path.suffix!r}); pass a .keras "
                         "or .h5 file or an edge-train run folder")
    return path


def load_keras(path: str | os.PathLike, threads: int | None = None):
    """THE Keras loader: a tf_keras model (no custom objects, not compiled) from a .keras/.h5
    file or a run folder, or ModelError naming the file and the fix."""
    path = keras_file(path)
    import_tensorflow(threads)
    import tf_keras as keras

    try:
        return keras.models.load_model(str(path), compile=False)
    except Exception as exc:  # Keras raises many types for a bad file; one clear line here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: cannot be read as a tf_keras model ({first[:160]}); pass "
                         "the model.keras written by edge-train") from exc


def model_input(model) -> tuple[int, int, int]:
    """(H, W, C) of a single-input image model, or ModelError."""
    shape = model.input_shape
    if isinstance(shape, list) or len(shape) != 4 or None in shape[1:]:
        raise ModelError(f"model {model.name!r} has input shape {shape}; a nerve model needs "
                         "one fixed-size image input (N, H, W, C)")
    return int(shape[1]), int(shape[2]), int(shape[3])


class KerasBackend:
    """A tf_keras model behind the edge Backend interface: run(x) -> list of float32 arrays.

    Takes batches (``max_batch``): ``x`` may hold N frames. Calls the model through one traced
    function (any batch size, no retracing), not model.predict, so it also works inside a
    distribution strategy's callback and pays no per-call overhead."""

    max_batch = KERAS_BATCH

    def __init__(self, model, threads: int | None = None, path: Path | None = None):
        tf = import_tensorflow(threads)
        self.model, self.model_path, self.threads = model, path, threads
        self.input_hw = model_input(model)[:2]
        self.input_channels = model_input(model)[2]
        self.input_dtype = np.dtype(np.float32)
        self.name = f"keras(tensorflow {tf.__version__})"
        spec = tf.TensorSpec((None, *self.input_hw, self.input_channels), tf.float32)
        self._fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])

    @classmethod
    def open(cls, path: str | os.PathLike, threads: int | None = None) -> KerasBackend:
        return cls(load_keras(path, threads), threads, keras_file(path))

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        out = self._fn(np.ascontiguousarray(x, dtype=np.float32))
        if isinstance(out, dict):
            out = list(out.values())
        outs = out if isinstance(out, (list, tuple)) else [out]
        return [np.asarray(o, dtype=np.float32) for o in outs]


def open_model(path: str | os.PathLike, backend: str | None = None,
               threads: int | None = None):
    """Any model as a Backend: Keras (run folder, .keras/.h5) or edge's TFLite/ONNX."""
    kind = backend or model_format(path)
    if kind == "keras":
        return KerasBackend.open(path, threads)
    from edge.model.backends import open_backend

    return open_backend(path, backend=kind, threads=threads)


def settings_origin(path: str | os.PathLike) -> str:
    """Where a model's settings come from, for reports: "run config" (a Keras model of a run
    folder), "sidecar" or "defaults"."""
    if model_format(path) == "keras" and run_of(path) is not None:
        return "run config"
    file = keras_file(path) if Path(path).is_dir() else Path(path)
    return "sidecar" if sidecar_path(file).is_file() else "defaults"


def config_meta(config, base: ModelMeta | None = None) -> ModelMeta:
    """A run's config.json as the sidecar a converted model of it gets (normalization, ROI,
    threshold, classes), over ``base`` (a sidecar next to the .keras file, if any)."""
    base = base or ModelMeta()
    return replace(base, scale=config.scale, offset=config.offset, threshold=config.threshold,
                   classes=base.classes or config.classes,
                   extra={**base.extra, "roi": list(config.roi) if config.roi else None})


def model_meta(path: str | os.PathLike) -> ModelMeta:
    """The sidecar-like metadata of any model: .tflite/.onnx its sidecar; Keras its run's
    config over its own sidecar."""
    file = keras_file(path) if Path(path).is_dir() else Path(path)
    meta = load_meta(file)
    run = run_of(path) if model_format(path) == "keras" else None
    return config_meta(run.config, meta) if run is not None else meta


def seg_model(backend, meta: ModelMeta, overrides: Overrides | None = None,
              path: Path | None = None) -> SegModel:
    """An opened Backend (a KerasBackend too) as the model object, settings resolved by
    edge.model.settings.resolve from ``meta`` and ``overrides`` (temporal smoothing off:
    evaluation frames are independent)."""
    settings = resolve(meta, backend.input_hw, backend.input_channels, overrides)
    return SegModel(backend, settings, meta, path)


def open_seg_model(path: str | os.PathLike, overrides: Overrides | None = None,
                   backend: str | None = None, threads: int | None = None) -> SegModel:
    """Any model file as the model object: Keras (run folder, .keras/.h5) with its run
    config's settings, .tflite/.onnx with its sidecar's (edge.model.SegModel.open; a sha256
    mismatch is recorded in ``sha256_check``, not refused: scoring is how one finds out)."""
    kind = backend or model_format(path)
    if kind != "keras":
        return SegModel.open(path, overrides, backend=kind, threads=threads,
                             allow_sha256_mismatch=True)
    return seg_model(KerasBackend.open(path, threads), model_meta(path), overrides,
                     keras_file(path))
