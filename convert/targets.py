"""Step 6: what runs where. Lists the ops of each TFLite model and flags those a target
cannot run, so a user knows before buying hardware which parts would fall back to the CPU.

The support sets below are DATA, transcribed by hand from each target's published list;
they cover builtin op names as LiteRT reports them. Op versions and per-op constraints
(tensor ranks, strides, sizes) are not modelled: a "supported" op may still be rejected by
a specific compiler or driver, and the final word is the target's own tool
(edgetpu_compiler, benchmark_model --use_gpu/--use_xnnpack/--use_nnapi).

Sources:
  xnnpack: github.com/tensorflow/tensorflow  tensorflow/lite/delegates/xnnpack/README.md
           ("Supported operators")
  gpu:     ai.google.dev/edge/litert/performance/gpu  ("Supported operations"), and
           tensorflow/lite/delegates/gpu/common/model_builder.cc
  nnapi:   tensorflow/lite/delegates/nnapi/nnapi_delegate.cc (Map() cases); NNAPI is
           deprecated from Android 15
  edgetpu: coral.ai/docs/edgetpu/models-intro/#supported-operations; TRANSPOSE_CONV is kept
           out on purpose: stride-2 transpose convolution does not compile for the Edge TPU
           (this project's issue 4), and DEQUANTIZE / float ops always stay on the CPU
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from edge.errors import ModelError

_COMMON = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED", "LOGISTIC", "MAX_POOL_2D", "MEAN", "MUL", "PAD", "RELU", "RELU6",
    "RESHAPE", "RESIZE_BILINEAR", "SOFTMAX", "STRIDED_SLICE", "SUB", "TANH", "QUANTIZE",
})

SUPPORT: dict[str, frozenset[str]] = {
    "xnnpack": _COMMON | {
        "ABS", "BATCH_MATMUL", "CEIL", "DEPTH_TO_SPACE", "DEQUANTIZE", "DIV", "ELU", "FLOOR",
        "GELU", "HARD_SWISH", "LEAKY_RELU", "MAXIMUM", "MINIMUM", "NEG", "PRELU",
        "RELU_N1_TO_1", "ROUND", "RSQRT", "SLICE", "SPACE_TO_DEPTH", "SPLIT", "SQRT", "SQUARE",
        "SQUARED_DIFFERENCE", "TRANSPOSE", "TRANSPOSE_CONV",
    },
    "gpu": _COMMON | {
        "ABS", "BATCH_MATMUL", "CAST", "DEPTH_TO_SPACE", "DEQUANTIZE", "DIV", "ELU", "EXP",
        "HARD_SWISH", "LEAKY_RELU", "MAXIMUM", "MINIMUM", "MIRROR_PAD", "NEG", "PACK",
        "PADV2", "PRELU", "REDUCE_MAX", "REDUCE_MIN", "RELU_N1_TO_1",
        "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE", "SPACE_TO_DEPTH", "SPLIT", "SPLIT_V",
        "SQRT", "SQUARE", "SQUARED_DIFFERENCE", "SUM", "TILE", "TRANSPOSE", "TRANSPOSE_CONV",
    },
    "nnapi": _COMMON | {
        "DEQUANTIZE", "DEPTH_TO_SPACE", "EXP", "HARD_SWISH", "L2_NORMALIZATION",
        "LEAKY_RELU", "MAXIMUM", "MINIMUM", "PRELU", "RELU_N1_TO_1",
        "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SPACE_TO_DEPTH", "SPLIT", "SQRT", "SQUEEZE",
        "TRANSPOSE", "TRANSPOSE_CONV",
    },
    "edgetpu": _COMMON | {
        "EXPAND_DIMS", "L2_NORMALIZATION", "MAXIMUM", "MINIMUM", "PACK", "PRELU",
        "REDUCE_MAX", "REDUCE_MIN", "RELU_N1_TO_1", "RESIZE_NEAREST_NEIGHBOR", "RSQRT",
        "SLICE", "SPACE_TO_DEPTH", "SPLIT", "SQUEEZE", "SUM", "TRANSPOSE",
    },
}

TARGET_NOTES = {
    "xnnpack": "default CPU delegate of LiteRT (float and int8)",
    "gpu": "float16/float32 compute; int8 models run with dequantized weights",
    "nnapi": "Android only; deprecated from Android 15; per-op support also depends on the "
             "Android version and the vendor driver",
    "edgetpu": "needs a full-integer int8 model compiled by edgetpu_compiler; the first "
               "unsupported op sends it and every later op to the CPU",
}

INT8_ONLY_TARGETS = ("edgetpu",)  # targets that run nothing but integer models


def _ops_details(model_path: str | Path) -> list[dict]:
    """LiteRT's per-op details, read without applying any delegate (else the delegated part
    shows up as a single DELEGATE op). ``_get_ops_details`` is LiteRT's only op listing."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        interp = Interpreter(
            model_path=str(model_path),
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        return interp._get_ops_details()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{model_path}: not a readable TFLite model ({exc})") from exc


def tflite_ops(model_path: str | Path) -> Counter:
    """Builtin op name -> count."""
    return Counter(d["op_name"] for d in _ops_details(model_path))


def is_full_int8(model_path: str | Path) -> bool:
    """No float compute between the (de)quantize ends: integer weights and activations."""
    for d in _ops_details(model_path):
        if d["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        if any(np.dtype(t).kind == "f" for t in d.get("operand_types", [])):
            return False
    return True


def target_report(model_path: str | Path) -> dict:
    """Ops of a TFLite model and, per target, the ops it cannot run."""
    ops = tflite_ops(model_path)
    int8 = is_full_int8(model_path)
    targets = {}
    for name, supported in SUPPORT.items():
        missing = sorted(op for op in ops if op not in supported)
        if name in INT8_ONLY_TARGETS and not int8:
            missing = ["(float model: needs full-integer int8)", *missing]
        targets[name] = {"unsupported": missing, "runs_fully": not missing,
                         "note": TARGET_NOTES[name]}
    return {"model": Path(model_path).name, "ops": dict(sorted(ops.items())),
            "full_int8": int8, "targets": targets}


def onnx_ops(model_path: str | Path) -> dict[str, int]:
    """ONNX op types and counts (no per-target flags: ONNX Runtime runs them all on CPU)."""
    import onnx

    try:
        graph = onnx.load(str(model_path)).graph
    except Exception as exc:  # onnx raises DecodeError and others on a bad file
        raise ModelError(f"{model_path}: not a readable ONNX model ({exc})") from exc
    return dict(sorted(Counter(n.op_type for n in graph.node).items()))


def report_markdown(reports: list[dict]) -> str:
    """A table: one row per model, one column per target (ok, or the unsupported ops)."""
    names = list(SUPPORT)
    lines = ["| model | ops | " + " | ".join(names) + " |",
             "|---|---|" + "---|" * len(names)]
    for rep in reports:
        cells = []
        for name in names:
            missing = rep["targets"][name]["unsupported"]
            cells.append("ok" if not missing else "NO: " + ", ".join(missing))
        ops = ", ".join(f"{k} x{v}" for k, v in rep["ops"].items())
        lines.append(f"| {rep['model']} | {ops} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
