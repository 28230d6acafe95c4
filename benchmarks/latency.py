"""Inference latency of model files, like TFLite's benchmark_model but across runtimes.

For each model x backend x thread count, in a fresh subprocess (so peak RSS is that model's
alone): for each repeat, open the model (init time), one first inference, warm-up runs, then
N timed runs; statistics are per repeat and the reported figures are medians of the repeats.

The input is a fixed random gray frame normalized the way the device normalizes it, fed
through the same Backend.run the device calls (quantization of the input included).

Run a single measurement in-process: ``python -m benchmarks.latency '<json spec>'`` (the
parent does this; it prints one line ``RESULT_MARKER <json>``).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.machine import describe_machine
from benchmarks.macs import count_model_macs, model_precision
from benchmarks.runtime import open_model, preimport, resolve_backend, synthetic_input
from edge.deps import MissingExtra, missing_extra_message
from edge.log import note
from edge.model.metadata import sha256_file

DEFAULT_THREADS = (1, 2)
DEFAULT_WARMUP = 20  # runs before timing: caches, allocator, lazy kernel packing
DEFAULT_RUNS = 200  # timed runs per repeat
DEFAULT_REPEATS = 3  # figures are medians of the repeats
CHILD_TIMEOUT_S = 1800  # one model x backend x threads, all repeats
RESULT_MARKER = "@@LATENCY_RESULT@@"
MS_PER_NS = 1e-6
MS_PER_S = 1000.0
GIGA = 1e9
KIB = 1024  # ru_maxrss is KiB on Linux (bytes on macOS)
PROC_STATUS = Path("/proc/self/status")
ERROR_TAIL_CHARS = 600
REPEATED_KEYS = ("init_ms", "first_ms", "min_ms", "mean_ms", "std_ms", "p50_ms", "p90_ms",
                 "p99_ms")

Progress = Callable[[str], None]


def stderr_progress(line: str) -> None:
    note(line)


@dataclass(frozen=True)
class LatencyConfig:
    """threads: thread counts to measure. backend: force a backend (None = by suffix).
    warmup/runs/repeats: see the module constants. subprocess: measure each model in a
    fresh process (True for real results; False only for quick tests, RSS then shared)."""

    threads: tuple[int, ...] = DEFAULT_THREADS
    backend: str | None = None
    warmup: int = DEFAULT_WARMUP
    runs: int = DEFAULT_RUNS
    repeats: int = DEFAULT_REPEATS
    subprocess: bool = True
    timeout_s: float = CHILD_TIMEOUT_S


def summarize_times(times_ms: Sequence[float]) -> dict:
    t = np.asarray(times_ms, dtype=np.float64)
    return {
        "min_ms": float(t.min()), "mean_ms": float(t.mean()), "std_ms": float(t.std()),
        "p50_ms": float(np.percentile(t, 50)), "p90_ms": float(np.percentile(t, 90)),
        "p99_ms": float(np.percentile(t, 99)),
    }


def _timed_ms(fn) -> float:
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) * MS_PER_NS


def measure_repeat(path: str, backend: str, threads: int, warmup: int, runs: int) -> dict:
    """One repeat: open, first inference, warm-up, timed runs."""
    t0 = time.perf_counter_ns()
    model = open_model(path, backend, threads)
    init_ms = (time.perf_counter_ns() - t0) * MS_PER_NS
    x = synthetic_input(model, path)
    first_ms = _timed_ms(lambda: model.run(x))
    for _ in range(warmup):
        model.run(x)
    times = [_timed_ms(lambda: model.run(x)) for _ in range(runs)]
    return {"init_ms": init_ms, "first_ms": first_ms, **summarize_times(times),
            "backend_name": model.name, "input_hw": list(model.input_hw)}


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux: VmHWM, which starts afresh at exec, while
    ru_maxrss keeps the high-water mark of the (forked) parent across exec."""
    try:
        for line in PROC_STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / KIB  # kB
    except (OSError, ValueError, IndexError):
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (KIB * KIB) if sys.platform == "darwin" else rss / KIB


def measure(path: str, backend: str, threads: int, warmup: int, runs: int,
            repeats: int) -> dict:
    """All repeats for one model x backend x threads, in this process; medians reported."""
    preimport(backend)
    reps = [measure_repeat(path, backend, threads, warmup, runs) for _ in range(repeats)]
    out = {k: statistics.median(r[k] for r in reps) for k in REPEATED_KEYS}
    out["repeat_p50_ms"] = [r["p50_ms"] for r in reps]
    out["backend_name"] = reps[0]["backend_name"]
    out["input_hw"] = reps[0]["input_hw"]
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def _measure_in_child(spec: dict, timeout_s: float) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.latency", json.dumps(spec)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
        str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")])))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": f"timed out after {timeout_s:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    tail = (proc.stderr or proc.stdout).strip()[-ERROR_TAIL_CHARS:]
    return {"status": "failed", "error": f"exit {proc.returncode}: {tail}"}


def _measure_guarded(spec: dict) -> dict:
    try:
        return {"status": "ok", **measure(**spec)}
    except Exception as exc:  # a failed variant is reported, never dropped
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}


def describe_model(path: str | Path) -> dict:
    """Static facts: size, hash, MACs, weight dtype (errors recorded, not raised)."""
    path = Path(path)
    info: dict = {"model": path.name, "path": str(path), "format": path.suffix.lstrip(".")}
    if not path.is_file():
        return {**info, "error": f"{path} does not exist"}
    info.update(size_bytes=path.stat().st_size, sha256=sha256_file(path))
    try:
        info.update(macs=count_model_macs(path), dtype=model_precision(path))
    except MissingExtra:
        raise  # e.g. a Keras model without TensorFlow: no model of that kind can run here
    except ImportError as exc:  # e.g. no onnx package on a device: time it anyway
        info.update(macs=None, dtype=None, macs_note="MACs not counted: "
                    + missing_extra_message(exc.name or "onnx"))
    except Exception as exc:  # an unreadable model still gets a (failed) row
        info["error"] = f"{type(exc).__name__}: {exc}"
    return info


def _row(info: dict, backend: str, threads: int, result: dict) -> dict:
    row = {**info, "backend": backend, "threads": threads, **result}
    if row.get("status") == "ok":
        row["fps"] = MS_PER_S / row["p50_ms"]
        if row.get("macs"):
            row["gmacs_per_s"] = row["macs"] / (row["p50_ms"] / MS_PER_S) / GIGA
    return row


def latency_model(path: str | Path, cfg: LatencyConfig, progress: Progress = stderr_progress,
                  ) -> list[dict]:
    """One row per thread count for one model."""
    info = describe_model(path)
    backend = resolve_backend(path, cfg.backend) if "error" not in info else cfg.backend
    rows = []
    for threads in cfg.threads:
        if "error" in info:
            rows.append(_row(info, backend, threads, {"status": "failed",
                                                      "error": info["error"]}))
            continue
        if not cfg.subprocess:
            # Load the runtime before saying "measuring": a Ctrl-C/SIGTERM inside a C
            # extension's import surfaces as "ImportError: initialization failed" instead of
            # an interruption. An import that fails is reported by _measure_guarded below.
            with contextlib.suppress(Exception):
                preimport(backend)
        progress(f"latency: {info['model']} [{backend}, {threads} thread(s)] "
                 f"{cfg.repeats} x ({cfg.warmup} warm-up + {cfg.runs} runs) ...")
        spec = {"path": str(path), "backend": backend, "threads": threads,
                "warmup": cfg.warmup, "runs": cfg.runs, "repeats": cfg.repeats}
        result = (_measure_in_child(spec, cfg.timeout_s) if cfg.subprocess
                  else _measure_guarded(spec))
        row = _row(info, backend, threads, result)
        progress(_progress_line(row))
        rows.append(row)
    return rows


def _progress_line(row: dict) -> str:
    if row["status"] != "ok":
        return f"latency: {row['model']} FAILED: {row['error']}"
    return (f"latency: {row['model']} [{row['backend']}, {row['threads']} thread(s)] "
            f"p50 {row['p50_ms']:.3f} ms, p99 {row['p99_ms']:.3f} ms, "
            f"peak RSS {row['peak_rss_mb']:.0f} MB")


def run_latency(models: Sequence[str | Path], cfg: LatencyConfig = LatencyConfig(),
                progress: Progress = stderr_progress) -> dict:
    """The latency result document for a list of models."""
    rows = [row for m in models for row in latency_model(m, cfg, progress)]
    return {"kind": "latency", "machine": describe_machine(), "config": asdict(cfg),
            "results": rows}


def _child_main(argv: Sequence[str]) -> int:
    """Subprocess entry: measure one spec and print the marker line."""
    result = _measure_guarded(json.loads(argv[0]))
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    _child_main(sys.argv[1:])
