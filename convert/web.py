"""The ``web`` format: the model the in-browser runner (edge/view/web/, LiteRT.js) loads.

What LiteRT.js takes, found by trying: int8 weights and activations are fine, but the input
and output tensors must be float32 (it has no INT8 input/output tensors) and every dimension
must be fixed (a batch of -1 loads but does not run). So: the int8 float-I/O conversion of a
copy of the model whose input has batch 1, i.e. shape 1xHxWxC, calibrated on real training
frames exactly like ``int8``.
"""

from __future__ import annotations

import numpy as np

import train  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow loads)
from convert import quantize
from edge.model.preprocess import PreprocessConfig

WEB_BATCH = 1  # LiteRT.js runs fixed shapes only


def fixed_batch(model, batch: int = WEB_BATCH):
    """A copy of ``model`` with input shape (batch, H, W, C) and the same weights."""
    import tf_keras as keras

    shape = model.input_shape[1:]
    inputs = keras.Input(batch_shape=(batch, *shape), name=model.input_names[0])
    clone = keras.models.clone_model(model, input_tensors=inputs)
    clone.set_weights(model.get_weights())
    return clone


def to_web(model, calib: np.ndarray, pre: PreprocessConfig) -> bytes:
    """int8 weights and activations, float32 input/output, input 1xHxWxC."""
    return quantize.to_int8(fixed_batch(model), calib, pre, float_io=True)
