"""Multiply-accumulates per inference, computed from the model file itself.

Counted: convolutions, depthwise convolutions, transposed convolutions and fully-connected /
matrix-multiply layers, at batch 1. Not counted: resizes, pooling, batch norm, activations,
element-wise ops (a small share, and their cost depends on the backend). The same rule as
train.model.count_macs, so a Keras model and its .tflite/.onnx conversions agree.

TFLite: operator list from the interpreter (``_get_ops_details``) and tensor shapes from
``get_tensor_details``. ONNX: shapes from onnx shape inference. Keras: train.model.count_macs
(imports TensorFlow, lazily).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.deps import native_stderr_without
from edge.errors import ModelError
from edge.fsutil import model_format

# TFLite filter layouts: CONV_2D (O, KH, KW, I); DEPTHWISE_CONV_2D (1, KH, KW, O);
# TRANSPOSE_CONV (O, KH, KW, I); FULLY_CONNECTED (O, I).
TFLITE_CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED",
                   "CONV_3D", "BATCH_MATMUL")
LITERT_INFO = ("INFO: Created TensorFlow Lite",)  # LiteRT's C++ chatter on fd 2, no switch
ONNX_QUANT_OPS = ("QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul",
                  "DequantizeLinear", "QuantizeLinear")


def _prod(shape) -> int:
    return int(np.prod([max(int(d), 1) for d in shape], dtype=np.int64)) if len(shape) else 1


# ---------------------------------------------------------------- TFLite
def open_tflite_interpreter(path: str | Path, threads: int | None = None):
    """A LiteRT interpreter, tensors allocated (ai_edge_litert, then tflite_runtime, then
    tensorflow.lite)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            from tensorflow.lite import Interpreter  # last resort: heavy import
    try:
        with native_stderr_without(LITERT_INFO):  # "INFO: Created ... XNNPACK delegate"
            interp = Interpreter(model_path=str(path), num_threads=threads)
            interp.allocate_tensors()
        return interp
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path} is not a readable .tflite model ({exc}); "
                         "re-export it with edge-convert") from exc


def _tflite_op_macs(op: dict, shapes: dict[int, tuple]) -> int:
    name = op["op_name"]
    ins, outs = list(op["inputs"]), list(op["outputs"])
    out = shapes[outs[0]]
    if name == "TRANSPOSE_CONV":
        # inputs: (output_shape, filter, input[, bias]); each input pixel scatters a KHxKWxO
        # patch: MACs = input pixels * I * KH * KW * O.
        filt, x = shapes[ins[1]], shapes[ins[2]]
        return _prod(x[:-1]) * _prod(filt)
    filt = shapes[ins[1]]
    if name == "CONV_2D":
        return _prod(out[:-1]) * _prod(filt)  # out pixels * O * KH * KW * I
    if name == "DEPTHWISE_CONV_2D":
        return _prod(out[:-1]) * _prod(filt[1:])  # out pixels * KH * KW * O
    if name == "CONV_3D":  # filter (KD, KH, KW, I, O)
        return _prod(out[:-1]) * _prod(filt)
    if name == "FULLY_CONNECTED":
        return _prod(out) * int(filt[-1])  # rows * O * I
    if name == "BATCH_MATMUL":
        return _prod(out) * int(shapes[ins[0]][-1])
    return 0


def tflite_macs(path: str | Path) -> int:
    """MACs per inference of a .tflite model (batch 1)."""
    interp = open_tflite_interpreter(path)
    shapes = {t["index"]: tuple(int(d) for d in t["shape"]) for t in interp.get_tensor_details()}
    total = 0
    for op in interp._get_ops_details():  # noqa: SLF001 (the only op-level API LiteRT has)
        if op["op_name"] in TFLITE_CONV_OPS:
            total += _tflite_op_macs(op, shapes)
    return int(total)


def tflite_precision(path: str | Path) -> str:
    """"int8" when conv filters are 8-bit, "float16" when stored fp16, else "float32"."""
    interp = open_tflite_interpreter(path)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    seen = set()
    for op in interp._get_ops_details():  # noqa: SLF001
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            seen.add(np.dtype(tensors[op["inputs"][1]]["dtype"]).name)
        if op["op_name"] == "DEQUANTIZE":
            seen.add(np.dtype(tensors[op["inputs"][0]]["dtype"]).name)
    if seen & {"int8", "uint8"}:
        return "int8"
    return "float16" if "float16" in seen else "float32"


# ---------------------------------------------------------------- ONNX
def _onnx_shapes(model) -> dict[str, tuple]:
    """Name -> shape for every tensor shape inference could resolve (symbolic dims -> 1)."""
    shapes: dict[str, tuple] = {}
    graph = model.graph
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in dims)
    for init in graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _onnx_node_macs(node, shapes: dict[str, tuple]) -> int:
    op = node.op_type
    if op in ("Conv", "ConvInteger", "QLinearConv"):
        w_name = node.input[3] if op == "QLinearConv" else node.input[1]
        w, out = shapes.get(w_name), shapes.get(node.output[0])
        if w is None or out is None:
            return 0
        return _prod(out) * _prod(w[1:])  # N*O*H*W * (I/group)*KH*KW
    if op == "ConvTranspose":
        w, x = shapes.get(node.input[1]), shapes.get(node.input[0])
        if w is None or x is None:
            return 0
        return _prod(x) * _prod(w[1:])  # N*I*H*W * (O/group)*KH*KW
    if op in ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"):
        a = shapes.get(node.input[0])
        out = shapes.get(node.output[0])
        if a is None or out is None:
            return 0
        trans_a = any(at.name == "transA" and at.i for at in node.attribute)
        k = a[-2] if trans_a else a[-1]
        return _prod(out) * int(k)
    return 0


def onnx_macs(path: str | Path) -> int:
    """MACs per inference of an .onnx model (batch 1, symbolic dims taken as 1)."""
    import onnx  # optional dependency: only for counting ONNX MACs
    from onnx import shape_inference

    try:
        model = shape_inference.infer_shapes(onnx.load(str(path)))
    except Exception as exc:  # onnx raises several unrelated types for bad files
        raise ModelError(f"{path} is not a readable .onnx model ({exc})") from exc
    shapes = _onnx_shapes(model)
    return int(sum(_onnx_node_macs(n, shapes) for n in model.graph.node))


def onnx_precision(path: str | Path) -> str:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    ops = {n.op_type for n in model.graph.node}
    if ops & set(ONNX_QUANT_OPS):
        return "int8"
    fp16 = onnx.TensorProto.FLOAT16
    return "float16" if any(i.data_type == fp16 for i in model.graph.initializer) else "float32"


# ---------------------------------------------------------------- Keras / dispatch
def keras_macs(path: str | Path) -> int:
    from train.model import count_macs
    from train.modelio import load_keras  # imports TensorFlow

    return count_macs(load_keras(path))


def count_model_macs(path: str | Path) -> int:
    """MACs per inference for any supported model file."""
    fmt = model_format(path)
    return {"tflite": tflite_macs, "onnx": onnx_macs, "keras": keras_macs}[fmt](path)


def model_precision(path: str | Path) -> str:
    fmt = model_format(path)
    if fmt == "tflite":
        return tflite_precision(path)
    if fmt == "onnx":
        return onnx_precision(path)
    return "float32"
