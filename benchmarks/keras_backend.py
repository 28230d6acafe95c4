"""A Backend for Keras models (.keras/.h5), for benchmarks only.

edge/ never loads Keras models (no TensorFlow on the device); benchmarks do, so the float
Keras model can stand beside its conversions. TensorFlow is imported here, lazily, and only
when a Keras model is asked for.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from edge.errors import ModelError


def import_tensorflow():
    """TensorFlow with tf_keras selected (the train package sets the switch, which must
    happen before TensorFlow is first imported)."""
    importlib.import_module("train")
    import tensorflow as tf

    return tf


def _tf(threads: int | None):
    tf = import_tensorflow()

    if threads:
        try:  # only possible before TensorFlow's runtime starts; later calls raise
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass
    return tf


def load_keras_model(path: str | Path, threads: int | None = None):
    _tf(threads)
    import tf_keras as keras

    if not Path(path).exists():
        raise ModelError(f"{path} does not exist; pass a model written by edge-train")
    try:
        return keras.models.load_model(str(path), compile=False)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is not a loadable Keras model ({exc})") from exc


class KerasBackend:
    """Runs a tf_keras model with the edge Backend interface (float32 in, float32 list out)."""

    def __init__(self, path: str | Path, threads: int | None = None):
        tf = _tf(threads)
        self.model = load_keras_model(path, threads)
        shape = self.model.inputs[0].shape
        self.input_hw = (int(shape[1]), int(shape[2]))
        self.input_channels = int(shape[3])
        self.threads = threads
        self.name = f"keras(tensorflow {tf.__version__})"
        # A traced function: model.predict adds per-call overhead no deployment would pay.
        self._fn = tf.function(lambda x: self.model(x, training=False))

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        out = self._fn(np.asarray(x, dtype=np.float32))
        outs = out if isinstance(out, (list, tuple)) else [out]
        return [np.asarray(o, dtype=np.float32) for o in outs]
