"""This machine's practical convolution throughput (GMAC/s), per runtime and precision.

One large 3x3 convolution, 64 -> 64 channels on a 128x128 map (0.60 GMAC), in int8 and in
float, run on the same runtime the models use. Wide layers at moderate resolution are the
best case for every CPU kernel library, so the figure is a ceiling: a model's GMAC/s divided
by it says how much of the hardware the architecture actually uses (narrow layers at full
resolution waste most of it). The ratio and the MAC count carry over to other boards far
better than milliseconds do.

TFLite models are generated with TensorFlow when it is installed and cached under
~/.cache/nerve-edge/ceiling (so a device without TensorFlow can use a copied cache). ONNX
models are written with onnx.helper (no TensorFlow needed). Timing calls the interpreter
directly with an input already in the model's dtype: no quantization cost in the ceiling.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.latency import Progress, stderr_progress
from benchmarks.machine import describe_machine
from benchmarks.macs import count_model_macs, open_tflite_interpreter
from edge.clikit import MissingExtra, install_hint, missing_extra_message
from edge.fsutil import atomic_write_bytes

CEIL_HW = 128  # feature map side, pixels
CEIL_CHANNELS = 64  # input = output channels
CEIL_KERNEL = 3
CEIL_MACS = CEIL_HW * CEIL_HW * CEIL_CHANNELS * CEIL_CHANNELS * CEIL_KERNEL * CEIL_KERNEL
DEFAULT_WARMUP = 5
DEFAULT_RUNS = 30  # a float run is ~10-60 ms on a PC core: 30 runs keep the total short
DEFAULT_REPEATS = 3
PRECISIONS = ("int8", "float32")
BACKENDS = ("tflite", "onnx")
CACHE_ENV = "NERVE_EDGE_CACHE"  # overrides the cache folder
ONNX_OPSET = 17
NS_PER_S = 1e9


class CeilingUnavailable(RuntimeError):
    """The ceiling model for a backend cannot be made here (says why and how to fix)."""


@dataclass(frozen=True)
class CeilingConfig:
    threads: tuple[int, ...] = (1,)
    backends: tuple[str, ...] = BACKENDS
    warmup: int = DEFAULT_WARMUP
    runs: int = DEFAULT_RUNS
    repeats: int = DEFAULT_REPEATS
    cache_dir: str | None = None  # None = $NERVE_EDGE_CACHE or ~/.cache/nerve-edge


def cache_dir(cfg: CeilingConfig) -> Path:
    base = cfg.cache_dir or os.environ.get(CACHE_ENV) or (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nerve-edge")
    d = Path(base) / "ceiling"
    d.mkdir(parents=True, exist_ok=True)
    return d


# ---------------------------------------------------------------- model files
def _tflite_conv_bytes(precision: str) -> bytes:
    from train.modelio import import_tensorflow

    tf = import_tensorflow()
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((CEIL_HW, CEIL_HW, CEIL_CHANNELS))
    out = keras.layers.Conv2D(CEIL_CHANNELS, CEIL_KERNEL, padding="same", use_bias=False)(inp)
    conv = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, out))
    if precision == "int8":
        rng = np.random.default_rng(0)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: (
            [rng.random((1, CEIL_HW, CEIL_HW, CEIL_CHANNELS), dtype=np.float32)]
            for _ in range(4))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def tflite_ceiling_model(precision: str, cfg: CeilingConfig) -> Path:
    path = cache_dir(cfg) / f"conv3x3_{CEIL_CHANNELS}ch_{CEIL_HW}px_{precision}.tflite"
    if path.is_file():
        return path
    from train.modelio import import_tensorflow

    try:
        import_tensorflow()
    except (ImportError, MissingExtra) as exc:
        raise CeilingUnavailable(
            f"no cached {path.name} in {path.parent} and TensorFlow is not installed to make "
            "it; run `edge-bench ceiling` once where TensorFlow is installed "
            f"({install_hint('train')}) and copy {path.parent} here") from exc
    atomic_write_bytes(path, _tflite_conv_bytes(precision))
    return path


def _onnx_conv_bytes(precision: str) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    wshape = (CEIL_CHANNELS, CEIL_CHANNELS, CEIL_KERNEL, CEIL_KERNEL)
    xshape = [1, CEIL_CHANNELS, CEIL_HW, CEIL_HW]
    pads = [CEIL_KERNEL // 2] * 4
    if precision == "int8":
        w = numpy_helper.from_array(rng.integers(-127, 128, wshape).astype(np.int8), "w")
        consts = [numpy_helper.from_array(np.array(v, dtype=t), n) for n, v, t in (
            ("xs", 0.02, np.float32), ("xz", 128, np.uint8), ("ws", 0.01, np.float32),
            ("wz", 0, np.int8), ("ys", 0.5, np.float32), ("yz", 128, np.uint8))]
        node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"],
                                ["y"], pads=pads)
        dtype, inits = TensorProto.UINT8, [w, *consts]
    else:
        w = numpy_helper.from_array(rng.standard_normal(wshape).astype(np.float32) * 0.05, "w")
        node = helper.make_node("Conv", ["x", "w"], ["y"], pads=pads)
        dtype, inits = TensorProto.FLOAT, [w]
    graph = helper.make_graph([node], f"ceiling_{precision}",
                              [helper.make_tensor_value_info("x", dtype, xshape)],
                              [helper.make_tensor_value_info("y", dtype, xshape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    model.ir_version = 8
    return model.SerializeToString()


def onnx_ceiling_model(precision: str, cfg: CeilingConfig) -> Path:
    path = cache_dir(cfg) / f"conv3x3_{CEIL_CHANNELS}ch_{CEIL_HW}px_{precision}.onnx"
    if not path.is_file():
        try:
            data = _onnx_conv_bytes(precision)
        except ImportError as exc:
            raise CeilingUnavailable("the ONNX ceiling model: "
                                     + missing_extra_message("onnx")) from exc
        atomic_write_bytes(path, data)
    return path


# ---------------------------------------------------------------- timing
def _tflite_invoker(path: Path, threads: int) -> Callable[[], None]:
    interp = open_tflite_interpreter(path, threads)
    d = interp.get_input_details()[0]
    x = np.random.default_rng(0).integers(-100, 100, d["shape"]).astype(d["dtype"])
    interp.set_tensor(d["index"], x)
    return interp.invoke


def _onnx_invoker(path: Path, threads: int) -> Callable[[], None]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    dtype = np.uint8 if "uint8" in inp.type else np.float32
    x = np.random.default_rng(0).integers(0, 255, inp.shape).astype(dtype)
    return lambda: sess.run(None, {inp.name: x})


MAKERS = {"tflite": (tflite_ceiling_model, _tflite_invoker),
          "onnx": (onnx_ceiling_model, _onnx_invoker)}


def _median_seconds(invoke: Callable[[], None], cfg: CeilingConfig) -> float:
    p50s = []
    for _ in range(cfg.repeats):
        for _ in range(cfg.warmup):
            invoke()
        times = []
        for _ in range(cfg.runs):
            t0 = time.perf_counter_ns()
            invoke()
            times.append((time.perf_counter_ns() - t0) / NS_PER_S)
        p50s.append(float(np.median(times)))
    return statistics.median(p50s)


def measure_one(backend: str, precision: str, threads: int, cfg: CeilingConfig) -> dict:
    make, invoker = MAKERS[backend]
    path = make(precision, cfg)
    macs = count_model_macs(path)
    seconds = _median_seconds(invoker(path, threads), cfg)
    return {"backend": backend, "dtype": precision, "threads": threads,
            "model": str(path), "macs": macs, "p50_ms": seconds * 1e3,
            "gmacs_per_s": macs / seconds / 1e9, "status": "ok"}


def run_ceiling(cfg: CeilingConfig = CeilingConfig(),
                progress: Progress = stderr_progress) -> dict:
    """The ceiling document: one row per backend x precision x threads."""
    rows = []
    for backend in cfg.backends:
        for precision in PRECISIONS:
            for threads in cfg.threads:
                rows.append(_guarded(backend, precision, threads, cfg, progress))
    return {"kind": "ceiling", "machine": describe_machine(), "config": asdict(cfg),
            "conv": {"hw": CEIL_HW, "channels": CEIL_CHANNELS, "kernel": CEIL_KERNEL,
                     "macs": CEIL_MACS},
            "results": rows}


def _guarded(backend, precision, threads, cfg, progress) -> dict:
    progress(f"ceiling: {backend} {precision} conv3x3 {CEIL_CHANNELS}->{CEIL_CHANNELS} at "
             f"{CEIL_HW}x{CEIL_HW}, {threads} thread(s) ...")
    try:
        row = measure_one(backend, precision, threads, cfg)
    except Exception as exc:  # one unavailable runtime must not hide the others
        row = {"backend": backend, "dtype": precision, "threads": threads,
               "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        progress(f"ceiling: {backend} {precision} unavailable: {row['error']}")
        return row
    progress(f"ceiling: {backend} {precision} {threads} thread(s): "
             f"{row['gmacs_per_s']:.1f} GMAC/s ({row['p50_ms']:.2f} ms)")
    return row


def ceiling_class(precision: str | None) -> str:
    """int8 models are held against the int8 ceiling; fp16/fp32 against float."""
    return "int8" if precision == "int8" else "float32"


def attach_fractions(latency_rows: list[dict], ceiling_doc: dict) -> None:
    """Add ceiling_gmacs_per_s and fraction_of_ceiling to each latency row, in place."""
    table = {(r["backend"], r["dtype"], r["threads"]): r["gmacs_per_s"]
             for r in ceiling_doc.get("results", []) if r.get("status") == "ok"}
    for row in latency_rows:
        key = (row.get("backend"), ceiling_class(row.get("dtype")), row.get("threads"))
        if row.get("gmacs_per_s") and key in table:
            row["ceiling_gmacs_per_s"] = table[key]
            row["fraction_of_ceiling"] = row["gmacs_per_s"] / table[key]
