"""Step 2: TFLite conversion: full-integer int8 (int8 or float I/O), float16, float32.

Always ``TFLiteConverter.from_keras_model``: on TF 2.21 ``from_concrete_functions`` on a
tf_keras model leaves READ_VARIABLE ops behind and the int8 conversion fails.

int8 is calibrated on real TRAINING frames passed through edge.model.preprocess (the device's own
code), never on synthetic data. The input range is pinned to the full 8-bit pixel range, so
with the default normalization (scale 1/255, offset 0) the int8 input has scale 1/255 and
zero point -128: an int8 input is simply the uint8 pixel minus 128. The chosen input
quantization is read back from the model and recorded; backends always use the model's own
parameters, never constants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

import train  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow loads)
from convert.common import ConvertError
from edge.errors import UserInputError
from edge.model.preprocess import PreprocessConfig

PIXEL_MIN, PIXEL_MAX = 0, 255  # 8-bit frames
INPUT_SCALE_RTOL = 0.02  # converted input scale within 2% of the expected one counts as "ok"


def pin_input_range(calib: np.ndarray, pre: PreprocessConfig) -> np.ndarray:
    """Copy of calib whose first frame holds one black and one white pixel.

    The converter takes the input range from the calibration min/max; a set without a pure
    black or white pixel would give an odd input scale. Two pixels in one frame out of
    hundreds barely move the activation ranges."""
    pinned = np.array(calib, dtype=np.float32, copy=True)
    pinned[0, 0, 0, :] = PIXEL_MIN * pre.scale + pre.offset
    pinned[0, 0, 1, :] = PIXEL_MAX * pre.scale + pre.offset
    return pinned


def representative(calib: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The converter's representative dataset: one (1,H,W,C) frame per step."""

    def gen():
        for i in range(len(calib)):
            yield [calib[i : i + 1].astype(np.float32)]

    return gen


def _converter(model):
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(model)


def _convert(converter, what: str) -> bytes:
    try:
        return converter.convert()
    except Exception as exc:  # the converter raises ConverterError, RuntimeError, ValueError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConvertError(f"TFLite {what} conversion failed: {first[:200]}") from exc


def to_fp32(model, calib=None, pre=None) -> bytes:
    return _convert(_converter(model), "float32")


def to_fp16(model, calib=None, pre=None) -> bytes:
    """Float16 weights, float32 compute on CPU (half the size; GPU delegates run it in fp16)."""
    import tensorflow as tf

    conv = _converter(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]
    return _convert(conv, "float16")


def to_int8(model, calib: np.ndarray, pre: PreprocessConfig, float_io: bool = False) -> bytes:
    """Full-integer int8 (TFLITE_BUILTINS_INT8 only: fails rather than fall back to float)."""
    import tensorflow as tf

    if calib is None or len(calib) == 0:
        raise UserInputError(
            "empty calibration set: int8 needs real training frames; pass --data with the "
            "training subjects and --calib-frames > 0"
        )
    conv = _converter(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative(pin_input_range(calib, pre))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not float_io:
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return _convert(conv, "int8" + (" (float I/O)" if float_io else ""))


def to_int8_float_io(model, calib: np.ndarray, pre: PreprocessConfig) -> bytes:
    return to_int8(model, calib, pre, float_io=True)


def expected_input_quant(pre: PreprocessConfig) -> tuple[float, int]:
    """(scale, zero point) of an int8 input spanning pixel 0..255 after normalization."""
    lo = PIXEL_MIN * pre.scale + pre.offset
    hi = PIXEL_MAX * pre.scale + pre.offset
    scale = (hi - lo) / 255.0
    return float(scale), int(round(-128 - lo / scale))


def input_quant(model_bytes: bytes) -> dict:
    """The converted model's input dtype and quantization, read back from the file."""
    from ai_edge_litert.interpreter import Interpreter

    detail = Interpreter(model_content=model_bytes).get_input_details()[0]
    scale, zero_point = detail["quantization"]
    return {"dtype": np.dtype(detail["dtype"]).name, "scale": float(scale),
            "zero_point": int(zero_point)}


def has_int8_tensors(path) -> bool:
    """True for a TFLite file with int8 tensors (the int8 and int8-float-io variants), whatever
    its name says (``edge-convert quantize --out m.tflite``); False for other files."""
    if not str(path).lower().endswith(".tflite"):
        return False
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(path)).get_tensor_details()
    return any(np.dtype(t["dtype"]) == np.int8 for t in details)


def check_input_quant(model_bytes: bytes, pre: PreprocessConfig) -> dict:
    """Record the int8 input quantization and whether it is the expected pixel - 128."""
    got = input_quant(model_bytes)
    if got["dtype"] != "int8":
        return {**got, "ok": None}
    scale, zp = expected_input_quant(pre)
    ok = abs(got["scale"] - scale) <= INPUT_SCALE_RTOL * scale and abs(got["zero_point"] - zp) <= 1
    return {**got, "expected_scale": scale, "expected_zero_point": zp, "ok": bool(ok)}


# variant name -> converter(model, calib, pre) -> bytes; the chain's format table uses these.
TFLITE_VARIANTS: dict[str, Callable[..., bytes]] = {
    "int8": to_int8,
    "int8-float-io": to_int8_float_io,
    "fp16": to_fp16,
    "fp32": to_fp32,
}


def quantize_file(in_path, out_path, variant: str, calib: np.ndarray | None,
                  pre: PreprocessConfig) -> dict:
    """Step as path -> path: Keras file -> one TFLite variant (atomic write)."""
    from edge.fsutil import atomic_write_bytes
    from train.modelio import load_keras

    if variant not in TFLITE_VARIANTS:
        raise UserInputError(f"unknown TFLite variant {variant!r}; choose from "
                             f"{', '.join(TFLITE_VARIANTS)}")
    data = TFLITE_VARIANTS[variant](load_keras(in_path), calib, pre)
    atomic_write_bytes(out_path, data)
    return {"variant": variant, "input_quant": check_input_quant(data, pre)}
