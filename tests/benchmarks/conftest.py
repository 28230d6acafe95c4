"""Tiny model fixtures built at test time (no committed binaries).

One architecture in three formats, small enough to convert and run in seconds:
  conv 3x3 stride 2 (1->4) -> depthwise 3x3 -> transposed conv 2x2 stride 2 (4->4)
  -> conv 1x1 (4->1) -> sigmoid, on a 16x24x1 input.
MACs by hand (batch 1):
  conv1      8*12 px * 4 out * 3*3*1      = 3456
  depthwise  8*12 px * 4 ch  * 3*3        = 3456
  tconv      8*12 input px * 4 in * 2*2*4 = 6144
  conv 1x1   16*24 px * 1 out * 4 in      = 1536
                                    total = 14592
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.model.metadata import ModelMeta, write_meta

H, W = 16, 24
TINY_MACS = 3456 + 3456 + 6144 + 1536


def _keras_model():
    from train.modelio import import_tensorflow

    import_tensorflow()  # selects tf_keras first
    import tf_keras as keras
    from tf_keras import layers

    keras.utils.set_random_seed(0)
    x = inp = keras.Input((H, W, 1), name="image")
    x = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(4, 2, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2D(1, 1, activation="sigmoid", name="mask")(x)
    return keras.Model(inp, x)


def _to_tflite(model, int8: bool) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(0)

        def representative():
            for _ in range(8):
                yield [rng.random((1, H, W, 1), dtype=np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def _onnx_model(path: Path) -> None:
    """The same graph written with onnx.helper (NHWC in and out, like tf2onnx exports)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def init(name, shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.3, name)

    inits = [init("w1", (4, 1, 3, 3)), init("wd", (4, 1, 3, 3)), init("wt", (4, 4, 2, 2)),
             init("w2", (1, 4, 1, 1))]
    nodes = [
        helper.make_node("Transpose", ["image"], ["x0"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["x0", "w1"], ["x1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["x1"], ["r1"]),
        helper.make_node("Conv", ["r1", "wd"], ["x2"], group=4, pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", ["x2", "wt"], ["x3"], strides=[2, 2]),
        helper.make_node("Conv", ["x3", "w2"], ["x4"]),
        helper.make_node("Sigmoid", ["x4"], ["x5"]),
        helper.make_node("Transpose", ["x5"], ["mask"], perm=[0, 2, 3, 1]),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, H, W, 1])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, H, W, 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by older onnxruntime builds too
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


@pytest.fixture(scope="session")
def tiny_macs() -> int:
    return TINY_MACS


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """{"keras", "tflite_fp32", "tflite_int8", "onnx"} -> paths, each with a sidecar."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("onnx")
    d = tmp_path_factory.mktemp("tiny_models")
    model = _keras_model()
    paths = {"keras": d / "tiny.keras", "tflite_fp32": d / "tiny_fp32.tflite",
             "tflite_int8": d / "tiny_int8.tflite", "onnx": d / "tiny.onnx"}
    model.save(paths["keras"])
    paths["tflite_fp32"].write_bytes(_to_tflite(model, int8=False))
    paths["tflite_int8"].write_bytes(_to_tflite(model, int8=True))
    _onnx_model(paths["onnx"])
    for key, p in paths.items():
        write_meta(p, ModelMeta(name=f"tiny-{key}", input_hw=(H, W), threshold=0.5))
    return paths


@pytest.fixture(scope="session")
def broken_model(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("broken") / "broken.tflite"
    p.write_bytes(b"this is not a flatbuffer")
    return p


def _write_png(path: Path, img: np.ndarray) -> None:
    import cv2

    assert cv2.imwrite(str(path), img), path


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> dict[str, Path]:
    """A Kaggle-layout folder: subjects 1 and 2, two 32x48 frames each, a bright rectangle
    that is exactly the nerve mask (so an identity model scores Dice 1), plus a split.json
    holding subject 2 out."""
    import json

    d = tmp_path_factory.mktemp("tiny_data")
    data = d / "train"
    data.mkdir()
    rng = np.random.default_rng(0)
    for subject in (1, 2):
        for image in (1, 2):
            mask = np.zeros((2 * H, 2 * W), np.uint8)
            y, x = 2 * int(rng.integers(0, H // 2)), 2 * int(rng.integers(0, W // 2))
            mask[y : y + 8, x : x + 10] = 255  # even-aligned: survives the 2x downsizing
            _write_png(data / f"{subject}_{image}.png", mask)
            _write_png(data / f"{subject}_{image}_mask.png", mask)
    split = d / "split.json"
    split.write_text(json.dumps({"train_subjects": ["1"], "val_subjects": ["2"]}))
    return {"data": data, "split": split}


@pytest.fixture(scope="session")
def identity_onnx(tmp_path_factory) -> Path:
    """An ONNX model whose output is its input: probability = pixel / 255."""
    import onnx
    from onnx import TensorProto, helper

    p = tmp_path_factory.mktemp("identity") / "identity.onnx"
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["mask"])], "identity",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, H, W, 1])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, H, W, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(p))
    write_meta(p, ModelMeta(name="identity", input_hw=(H, W), threshold=0.5))
    return p
