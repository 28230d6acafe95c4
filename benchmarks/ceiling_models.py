"""The convolution-only models behind edge-bench ceiling, and where they are cached.

Two shape sets, each built as one model of independent convolutions (every one fed by its own
input, so nothing but the convolutions is timed):

- ``wide``: one 3x3 convolution 64 -> 64 channels on a 128x128 map (0.60 GMAC). Wide layers
  at moderate resolution are the best case of every kernel library: the machine's peak.
- ``model``: the convolutions of the shipped default model (nerve_default_int8.tflite), each
  with its own channel counts, kernel, stride and map size (0.128 GMAC in all). Thin layers
  (12-96 channels) cannot fill wide SIMD or matrix units (AVX-512 VNNI, AMX, SME), so this
  is the throughput a U-Net of this shape can reach here: a model's share of it means the same
  on AMX, AVX-512 and ARM machines, where the share of the wide peak does not.

TFLite models are made with TensorFlow (the [convert] extra) and cached under
~/.cache/nerve-edge/ceiling, so a device without TensorFlow can use a copied cache; ONNX ones
are written with onnx.helper (the onnx package, also in [convert]).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.deps import MissingExtra, missing_extra_message
from edge.fsutil import atomic_write_bytes

CEIL_HW = 128  # wide ceiling: feature map side, pixels
CEIL_CHANNELS = 64  # wide ceiling: input = output channels
CEIL_KERNEL = 3
SHAPE_SOURCE = Path(__file__).resolve().parents[1] / "edge" / "models" / "nerve_default_int8.tflite"
CACHE_ENV = "NERVE_EDGE_CACHE"  # overrides the cache folder
ONNX_OPSET = 17
CALIBRATION_BATCHES = 4
INSTALL_CONVERT = ("pip install -e '.[convert]' from the nerve-edge repository root "
                   "(or `make venv`)")


class CeilingUnavailable(RuntimeError):
    """The ceiling model for a backend cannot be made here (says why and how to fix)."""


@dataclass(frozen=True)
class ConvShape:
    """One convolution: input map (h, w, cin) -> cout channels, k x k kernel, stride, 'same'."""

    h: int
    w: int
    cin: int
    cout: int
    kernel: int = 3
    stride: int = 1

    @property
    def out_hw(self) -> tuple[int, int]:
        return -(-self.h // self.stride), -(-self.w // self.stride)

    @property
    def macs(self) -> int:
        oh, ow = self.out_hw
        return oh * ow * self.cout * self.kernel * self.kernel * self.cin

    def text(self) -> str:
        s = f"/{self.stride}" if self.stride > 1 else ""
        return f"{self.kernel}x{self.kernel}{s} {self.cin}->{self.cout} at {self.h}x{self.w}"


WIDE = (ConvShape(CEIL_HW, CEIL_HW, CEIL_CHANNELS, CEIL_CHANNELS, CEIL_KERNEL),)
CEIL_MACS = WIDE[0].macs
SHAPE_SETS = ("model", "wide")  # model first: the one shares are computed against


def model_conv_shapes(path: str | Path = SHAPE_SOURCE) -> tuple[ConvShape, ...]:
    """The CONV_2D layers of a .tflite model (stride from the input/output map sizes)."""
    from benchmarks.macs import open_tflite_interpreter

    interp = open_tflite_interpreter(path)
    shapes = {t["index"]: tuple(int(d) for d in t["shape"]) for t in interp.get_tensor_details()}
    convs = []
    for op in interp._get_ops_details():  # noqa: SLF001 (the only op-level API LiteRT has)
        if op["op_name"] != "CONV_2D":
            continue
        _, h, w, cin = shapes[op["inputs"][0]]
        cout, kh, _, _ = shapes[op["inputs"][1]]
        oh = shapes[op["outputs"][0]][1]
        convs.append(ConvShape(h, w, cin, cout, kh, max(1, round(h / oh))))
    return tuple(convs)


def conv_shapes(shape_set: str) -> tuple[ConvShape, ...]:
    return WIDE if shape_set == "wide" else model_conv_shapes()


def describe(shape_set: str, convs: tuple[ConvShape, ...]) -> dict:
    what = ("one wide convolution (the machine's peak)" if shape_set == "wide" else
            f"the {len(convs)} convolutions of {SHAPE_SOURCE.name}, each on its own")
    return {"what": what, "macs": sum(c.macs for c in convs),
            "convs": [c.text() for c in convs]}


def cache_dir(base: str | None) -> Path:
    root = base or os.environ.get(CACHE_ENV) or (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nerve-edge")
    d = Path(root) / "ceiling"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _stem(shape_set: str, convs: tuple[ConvShape, ...], precision: str) -> str:
    if shape_set == "wide":  # the name earlier versions cached it under
        return f"conv3x3_{CEIL_CHANNELS}ch_{CEIL_HW}px_{precision}"
    digest = hashlib.sha256(repr(convs).encode()).hexdigest()[:10]
    return f"model_convs_{digest}_{precision}"


def cached_path(backend: str, shape_set: str, precision: str, base: str | None) -> Path:
    suffix = {"tflite": ".tflite", "onnx": ".onnx"}[backend]
    return cache_dir(base) / (_stem(shape_set, conv_shapes(shape_set), precision) + suffix)


def makeable(backend: str, shape_set: str, precision: str, base: str | None) -> bool:
    """Is the model cached, or are the packages that make it installed? (No heavy import.)"""
    if cached_path(backend, shape_set, precision, base).is_file():
        return True
    needs = ("tensorflow", "tf_keras") if backend == "tflite" else ("onnx",)
    return all(importlib.util.find_spec(m) is not None for m in needs)


def no_ceiling_message() -> str:
    return ("the ceiling models are made with TensorFlow and onnx, which this install lacks "
            f"(a device install): install the [convert] extra: {INSTALL_CONVERT}; or copy "
            f"~/.cache/nerve-edge/ceiling from a machine that has it (${CACHE_ENV} points "
            "elsewhere)")


# ---------------------------------------------------------------- TFLite
def _input_shapes(tflite: bytes) -> list[list[int]]:
    """The model's inputs in the order its calibrator feeds them (not the Keras order)."""
    from ai_edge_litert.interpreter import Interpreter

    return [list(d["shape"]) for d in Interpreter(model_content=tflite).get_input_details()]


def _tflite_bytes(convs: tuple[ConvShape, ...], precision: str) -> bytes:
    from train.modelio import import_tensorflow

    tf = import_tensorflow()
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inputs = [keras.Input((c.h, c.w, c.cin)) for c in convs]
    outputs = [keras.layers.Conv2D(c.cout, c.kernel, strides=c.stride, padding="same",
                                   use_bias=False)(x) for c, x in zip(convs, inputs, strict=True)]
    model = keras.Model(inputs, outputs)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision == "int8":
        shapes = _input_shapes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        rng = np.random.default_rng(0)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: (
            [rng.random(s, dtype=np.float32) for s in shapes]
            for _ in range(CALIBRATION_BATCHES))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def tflite_model(shape_set: str, precision: str, base: str | None) -> Path:
    path = cached_path("tflite", shape_set, precision, base)
    if path.is_file():
        return path
    from train.modelio import import_tensorflow

    try:
        import_tensorflow()
    except (ImportError, MissingExtra) as exc:
        raise CeilingUnavailable(
            f"no cached {path.name} in {path.parent} and TensorFlow is not installed to make "
            f"it: {INSTALL_CONVERT}, or run `edge-bench ceiling` once where it is and copy "
            f"{path.parent} here") from exc
    atomic_write_bytes(path, _tflite_bytes(conv_shapes(shape_set), precision))
    return path


# ---------------------------------------------------------------- ONNX
def _onnx_node(i: int, c: ConvShape, precision: str, rng):
    from onnx import TensorProto, helper, numpy_helper

    wshape = (c.cout, c.cin, c.kernel, c.kernel)
    pads = [c.kernel // 2] * 4
    x, y, w = f"x{i}", f"y{i}", f"w{i}"
    attrs = {"pads": pads, "strides": [c.stride, c.stride]}
    if precision == "int8":
        inits = [numpy_helper.from_array(rng.integers(-127, 128, wshape).astype(np.int8), w)]
        inits += [numpy_helper.from_array(np.array(v, dtype=t), f"{n}{i}") for n, v, t in (
            ("xs", 0.02, np.float32), ("xz", 128, np.uint8), ("ws", 0.01, np.float32),
            ("wz", 0, np.int8), ("ys", 0.5, np.float32), ("yz", 128, np.uint8))]
        names = [x, f"xs{i}", f"xz{i}", w, f"ws{i}", f"wz{i}", f"ys{i}", f"yz{i}"]
        node = helper.make_node("QLinearConv", names, [y], **attrs)
        dtype = TensorProto.UINT8
    else:
        inits = [numpy_helper.from_array(rng.standard_normal(wshape).astype(np.float32) * 0.05,
                                         w)]
        node = helper.make_node("Conv", [x, w], [y], **attrs)
        dtype = TensorProto.FLOAT
    vin = helper.make_tensor_value_info(x, dtype, [1, c.cin, c.h, c.w])
    vout = helper.make_tensor_value_info(y, dtype, [1, c.cout, *c.out_hw])
    return node, inits, vin, vout


def _onnx_bytes(convs: tuple[ConvShape, ...], precision: str) -> bytes:
    from onnx import helper

    rng = np.random.default_rng(0)
    parts = [_onnx_node(i, c, precision, rng) for i, c in enumerate(convs)]
    graph = helper.make_graph([p[0] for p in parts], f"ceiling_{precision}",
                              [p[2] for p in parts], [p[3] for p in parts],
                              [t for p in parts for t in p[1]])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    model.ir_version = 8
    return model.SerializeToString()


def onnx_model(shape_set: str, precision: str, base: str | None) -> Path:
    path = cached_path("onnx", shape_set, precision, base)
    if not path.is_file():
        try:
            data = _onnx_bytes(conv_shapes(shape_set), precision)
        except ImportError as exc:
            raise CeilingUnavailable("the ONNX ceiling model: "
                                     + missing_extra_message("onnx")) from exc
        atomic_write_bytes(path, data)
    return path


MAKERS = {"tflite": tflite_model, "onnx": onnx_model}
