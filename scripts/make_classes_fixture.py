"""Build the tiny 2-class stand-in models for the multi-class tests (the ONNX one without
TensorFlow).

    tests/edge/fixtures/two_class.onnx   (+ two_class.json)
    tests/edge/fixtures/two_class_float.tflite (+ .json): the same two channels as
        a float32 TFLite model (a 1x1 convolution + sigmoid), for the TFLite backend and the
        in-browser runner (LiteRT.js takes float32 I/O and fixed shapes)

An ONNX graph whose two output channels are known functions of the input pixel p (0..255,
normalized x = p / 255 as edge-run does by default):

    channel 0, "nerve"  (id 1):          sigmoid(GAIN * (x - 0.3))   -> on where p > ~77
    channel 1, "vessel" (id 2, safety):  sigmoid(GAIN * (x - 0.6))   -> on where p > ~153

so a gray level of 128 is nerve only, 230 is both (the vessel must win in the class-id map),
and 0 is background. Needs the onnx package (the [convert] extra, or pip install onnx); the
.tflite also needs TensorFlow (skipped with a note when it is not installed):

    .venv/bin/python scripts/make_classes_fixture.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edge.fsutil import atomic_write_bytes  # noqa: E402
from edge.model.metadata import ModelMeta, write_meta  # noqa: E402

OUT = ROOT / "tests" / "edge" / "fixtures" / "two_class.onnx"
TFLITE_OUT = OUT.with_name("two_class_float.tflite")  # its own sidecar: own sha256
INPUT_HW = (32, 48)  # tiny: the file stays under 1 kB and runs in microseconds
THRESHOLDS = (0.3, 0.6)  # normalized input level where channel k crosses probability 0.5
GAIN = 100.0  # sigmoid slope: probabilities are ~0 or ~1 a few gray levels from a threshold
ONNX_OPSET = 17
IR_VERSION = 8  # readable by every onnxruntime >= 1.10
CLASSES = [
    {"id": 1, "name": "nerve", "color": "#ffc800", "safety": False},
    {"id": 2, "name": "vessel", "color": "#ff3030", "safety": True},
]


def two_class_onnx() -> bytes:
    h, w = INPUT_HW
    n = len(THRESHOLDS)
    thr = numpy_helper.from_array(np.array(THRESHOLDS, np.float32).reshape(1, 1, 1, n), "thr")
    gain = numpy_helper.from_array(np.array(GAIN, np.float32), "gain")
    graph = helper.make_graph(
        [helper.make_node("Sub", ["image", "thr"], ["centred"]),  # broadcasts to C channels
         helper.make_node("Mul", ["centred", "gain"], ["logits"]),
         helper.make_node("Sigmoid", ["logits"], ["mask"])],
        "two_class_fixture",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, h, w, 1])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, h, w, n])],
        initializer=[thr, gain],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model.SerializeToString()


def two_class_tflite() -> bytes:
    """The same function as a float32 TFLite: sigmoid(GAIN * x - GAIN * threshold_k)."""
    import train  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

    # isort: split
    import tensorflow as tf
    import tf_keras as keras

    inputs = keras.Input(batch_shape=(1, *INPUT_HW, 1), name="image")
    conv = keras.layers.Conv2D(len(THRESHOLDS), 1, activation="sigmoid", name="mask")
    model = keras.Model(inputs, conv(inputs))
    kernel = np.full((1, 1, 1, len(THRESHOLDS)), GAIN, np.float32)
    conv.set_weights([kernel, -GAIN * np.array(THRESHOLDS, np.float32)])
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def main() -> int:
    atomic_write_bytes(OUT, two_class_onnx())
    try:
        atomic_write_bytes(TFLITE_OUT, two_class_tflite())
    except ImportError as e:
        print(f"skipped {TFLITE_OUT.name}: {e} (needs the [convert] extra)")
    meta = ModelMeta(name="two_class_fixture", version="1", input_hw=INPUT_HW, min_area=0,
                     classes=CLASSES,
                     extra={"note": "stand-in for tests: channel k = pixel/255 > "
                                    f"{list(THRESHOLDS)}[k] (scripts/make_classes_fixture.py)"})
    for model in (OUT, TFLITE_OUT):
        if model.exists():
            side = write_meta(model, meta)
            print(f"wrote {model.relative_to(ROOT)} and {side.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
