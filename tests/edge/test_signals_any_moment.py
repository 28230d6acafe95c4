"""Ctrl-C and SIGTERM at any moment of edge-run and edge-bench (no TensorFlow): from the entry
module's first lines, during numpy's import, start-up (OpenCV, the model), the run and the
shutdown, NERVE_EDGE_SIGNAL_REPEATS (20) sends per point, each ending with 130 and one
line (tests/signal_sweep.py says how the sends are timed). edge-train and edge-convert (with
TensorFlow's import): tests/train/test_tf_tools_signals_any_moment.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (signal_sweep)
from signal_sweep import Tool, assert_swept, sweep_all  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "edge" / "models" / "nerve_fixture_int8.tflite"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")]


def edge_run() -> Tool:
    return Tool("edge-run", "edge.cli", [
        "--source", "phantom", "--headless", "--model", str(FIXTURE), "--max-frames", "600",
        "--record", "out.mp4", "--report", "run.json"], heavy="numpy",
        run_marker=("out.txt", "          outputs"),
        end_marker=("out.txt", "edge-run: stopped: max frames"),
        allowed=("record: writing", "edge-run: frame "), clean=("out.mkv", "run.json"))


def edge_bench() -> Tool:
    return Tool("edge-bench", "benchmarks.cli", [
        "latency", "--models", str(FIXTURE), "--threads", "1", "--runs", "3000",
        "--repeats", "1", "--in-process", "--out", "lat.json"], heavy="numpy",
        run_marker=("err.txt", "runs) ..."), end_marker=("err.txt", "edge-bench: wrote"),
        allowed=("edge-bench latency:", "  ", "latency: ", "edge-bench: wrote"),
        clean=("lat.json",))


@pytest.mark.parametrize("make_tool", [edge_run, edge_bench], ids=["edge-run", "edge-bench"])
def test_a_signal_at_any_moment_ends_with_130_and_one_line(make_tool, tmp_path):
    assert_swept(sweep_all(make_tool(), tmp_path), "numpy")
