"""This machine's practical convolution throughput (GMAC/s), per runtime and precision.

Two ceilings, each in int8 and float on the same runtime the models use
(benchmarks/ceiling_models.py builds them):

- ``model``: the convolutions of the shipped default model, each with its own (thin) channel
  counts and map size, timed on their own. A model's GMAC/s divided by it (its
  ``fraction_of_ceiling``) says how much of what this machine can do for layers of this shape
  the model gets; the rest is lost between the convolutions (resizes, concatenations,
  quantization, the interpreter). It means the same on AMX, AVX-512 and ARM machines.
- ``wide``: one 3x3 convolution 64 -> 64 channels on a 128x128 map (0.60 GMAC), the best case
  of every kernel library: the machine's peak (``fraction_of_wide_ceiling``). On a CPU with
  wide matrix units (AMX, VNNI) thin layers reach a small part of it, whatever the model does.

MAC counts and the model-shaped share carry over to other boards far better than milliseconds.
Timing calls the interpreter directly with inputs already in the model's dtype: no
quantization cost in the ceiling.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.ceiling_models import (
    CEIL_CHANNELS,
    CEIL_HW,
    CEIL_KERNEL,
    CEIL_MACS,
    MAKERS,
    SHAPE_SETS,
    CeilingUnavailable,
    conv_shapes,
    describe,
    makeable,
    no_ceiling_message,
)
from benchmarks.latency import Progress, stderr_progress
from benchmarks.machine import describe_machine
from benchmarks.macs import count_model_macs, open_tflite_interpreter
from edge.deps import MissingExtra

__all__ = ["CEIL_MACS", "CeilingUnavailable", "run_ceiling", "attach_fractions"]

DEFAULT_WARMUP = 5
DEFAULT_RUNS = 30  # a float run is ~10-60 ms on a PC core: 30 runs keep the total short
DEFAULT_REPEATS = 3
PRECISIONS = ("int8", "float32")
BACKENDS = ("tflite", "onnx")
NS_PER_S = 1e9


@dataclass(frozen=True)
class CeilingConfig:
    threads: tuple[int, ...] = (1,)
    backends: tuple[str, ...] = BACKENDS
    shapes: tuple[str, ...] = SHAPE_SETS
    warmup: int = DEFAULT_WARMUP
    runs: int = DEFAULT_RUNS
    repeats: int = DEFAULT_REPEATS
    cache_dir: str | None = None  # None = $NERVE_EDGE_CACHE or ~/.cache/nerve-edge


def check_makeable(cfg: CeilingConfig) -> None:
    """MissingExtra (exit 2, one line with the install command) when no ceiling model at
    all is cached or can be made here: a device install without the [convert] extra."""
    if not any(makeable(b, s, p, cfg.cache_dir)
               for b in cfg.backends for s in cfg.shapes for p in PRECISIONS):
        raise MissingExtra(no_ceiling_message())


# ---------------------------------------------------------------- timing
def _tflite_invoker(path: Path, threads: int) -> Callable[[], None]:
    interp = open_tflite_interpreter(path, threads)
    rng = np.random.default_rng(0)
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], rng.integers(-100, 100, d["shape"]).astype(d["dtype"]))
    return interp.invoke


def _onnx_invoker(path: Path, threads: int) -> Callable[[], None]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {i.name: rng.integers(0, 255, i.shape).astype(
        np.uint8 if "uint8" in i.type else np.float32) for i in sess.get_inputs()}
    return lambda: sess.run(None, feed)


INVOKERS = {"tflite": _tflite_invoker, "onnx": _onnx_invoker}


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


def measure_one(backend: str, precision: str, threads: int, cfg: CeilingConfig,
                shape_set: str = "wide") -> dict:
    path = MAKERS[backend](shape_set, precision, cfg.cache_dir)
    macs = count_model_macs(path)
    seconds = _median_seconds(INVOKERS[backend](path, threads), cfg)
    return {"shape": shape_set, "backend": backend, "dtype": precision, "threads": threads,
            "model": str(path), "macs": macs, "p50_ms": seconds * 1e3,
            "gmacs_per_s": macs / seconds / 1e9, "status": "ok"}


def run_ceiling(cfg: CeilingConfig = CeilingConfig(),
                progress: Progress = stderr_progress) -> dict:
    """The ceiling document: one row per shape set x backend x precision x threads."""
    rows = []
    for shape_set in cfg.shapes:
        for backend in cfg.backends:
            for precision in PRECISIONS:
                for threads in cfg.threads:
                    rows.append(_guarded(shape_set, backend, precision, threads, cfg, progress))
    return {"kind": "ceiling", "machine": describe_machine(), "config": asdict(cfg),
            "conv": {"hw": CEIL_HW, "channels": CEIL_CHANNELS, "kernel": CEIL_KERNEL,
                     "macs": CEIL_MACS},
            "shapes": {s: describe(s, conv_shapes(s)) for s in cfg.shapes},
            "results": rows}


SHAPE_NAMES = {"wide": f"wide conv3x3 {CEIL_CHANNELS}->{CEIL_CHANNELS} at {CEIL_HW}x{CEIL_HW}",
               "model": "model-shaped (the default model's convolutions)"}


def _guarded(shape_set, backend, precision, threads, cfg, progress) -> dict:
    what = f"ceiling: {SHAPE_NAMES[shape_set]}, {backend} {precision}, {threads} thread(s)"
    progress(f"{what} ...")
    try:
        row = measure_one(backend, precision, threads, cfg, shape_set)
    except Exception as exc:  # one unavailable runtime must not hide the others
        row = {"shape": shape_set, "backend": backend, "dtype": precision, "threads": threads,
               "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        progress(f"{what}: unavailable: {row['error']}")
        return row
    progress(f"{what}: {row['gmacs_per_s']:.1f} GMAC/s ({row['p50_ms']:.2f} ms)")
    return row


def ceiling_class(precision: str | None) -> str:
    """int8 models are held against the int8 ceiling; fp16/fp32 against float."""
    return "int8" if precision == "int8" else "float32"


def attach_fractions(latency_rows: list[dict], ceiling_doc: dict) -> None:
    """Add to each latency row, in place, its share of the model-shaped ceiling
    (ceiling_gmacs_per_s, fraction_of_ceiling) and of the wide one (wide_ceiling_gmacs_per_s,
    fraction_of_wide_ceiling), matched by runtime, dtype class and thread count. Rows of
    ceiling documents from before the model-shaped ceiling count as wide."""
    table = {(r.get("shape", "wide"), r["backend"], r["dtype"], r["threads"]): r["gmacs_per_s"]
             for r in ceiling_doc.get("results", []) if r.get("status") == "ok"}
    for row in latency_rows:
        if not row.get("gmacs_per_s"):
            continue
        key = (row.get("backend"), ceiling_class(row.get("dtype")), row.get("threads"))
        for shape_set, prefix in (("model", ""), ("wide", "wide_")):
            ceiling = table.get((shape_set, *key))
            if ceiling:
                row[f"{prefix}ceiling_gmacs_per_s"] = ceiling
                row[f"fraction_of_{prefix}ceiling"] = row["gmacs_per_s"] / ceiling
