"""Step 3: ONNX export with tf2onnx (opset 17, dynamic batch, input named ``image``), and a
parity check of onnxruntime against the Keras model on real frames.

tf2onnx 1.17 converts a tf_keras model directly (``from_keras``); when that fails we trace
the model into a tf.function and use ``from_function``, which needs no Keras internals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import train  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow loads)
from convert.common import ConvertError
from edge.fsutil import atomic_write_bytes

ONNX_OPSET = 17
INPUT_NAME = "image"  # what edge's OnnxBackend and users see
PARITY_FRAMES = 4  # frames compared against Keras after export


def _signature(model):
    import tensorflow as tf

    _, h, w, c = model.input_shape
    return [tf.TensorSpec((None, h, w, c), tf.float32, name=INPUT_NAME)]


def _from_function(model):
    """Fallback: trace the Keras call into a tf.function (inference mode)."""
    import tensorflow as tf
    import tf2onnx

    sig = _signature(model)

    @tf.function(input_signature=sig)
    def serve(image):
        out = model(image, training=False)
        outs = out if isinstance(out, (list, tuple)) else [out]
        return dict(zip(model.output_names, outs, strict=True))

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=sig, opset=ONNX_OPSET)
    return proto


def to_onnx_bytes(model) -> bytes:
    """Serialized ONNX model of a tf_keras model (float32)."""
    import tf2onnx

    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=_signature(model),
                                              opset=ONNX_OPSET)
    except Exception as keras_exc:  # tf2onnx's Keras path breaks with some Keras versions
        try:
            proto = _from_function(model)
        except Exception as exc:
            raise ConvertError(
                f"ONNX export failed (from_keras: {str(keras_exc)[:120]}; "
                f"from_function: {str(exc)[:120]})"
            ) from exc
    return proto.SerializeToString()


def to_onnx(model, calib=None, pre=None) -> bytes:
    """Format-table signature (model, calib, pre) -> bytes; calibration is not used."""
    return to_onnx_bytes(model)


def parity(model, onnx_path: str | Path, frames: np.ndarray) -> dict:
    """Max/mean abs difference of every output, ONNX Runtime vs Keras, on a few frames (both
    run the kit's way: edge.model.backends.OnnxBackend and train.modelio.KerasBackend)."""
    from edge.model.backends import OnnxBackend
    from train.modelio import KerasBackend

    x = np.asarray(frames[:PARITY_FRAMES], dtype=np.float32)
    got = OnnxBackend(onnx_path).run(x)
    ref = KerasBackend(model).run(x)
    diffs = [np.abs(out - next(r for r in ref if r.shape == out.shape)) for out in got]
    return {
        "frames": int(len(x)),
        "max_abs_diff": float(max(d.max() for d in diffs)),
        "mean_abs_diff": float(np.mean([d.mean() for d in diffs])),
    }


def onnx_file(in_path, out_path, frames: np.ndarray | None = None) -> dict:
    """Step as path -> path: Keras file -> ONNX (atomic write), with parity when frames given."""
    from train.modelio import load_keras

    model = load_keras(in_path)
    atomic_write_bytes(out_path, to_onnx_bytes(model))
    result = {"opset": ONNX_OPSET, "input": INPUT_NAME}
    if frames is not None and len(frames):
        result["parity"] = parity(model, out_path, frames)
    return result
