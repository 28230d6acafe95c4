"""Ctrl-C and SIGTERM at any moment of edge-run and edge-bench (no TensorFlow): from the entry
module's first lines, during numpy/OpenCV's import, start-up (model load), the run and the
shutdown, NERVE_EDGE_SIGNAL_REPEATS (20) sends per point, each ending with 130 and one
line (tests/signal_sweep.py says how the sends are timed). edge-train and edge-convert (with
TensorFlow's import): tests/train/test_signals_any_moment.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (signal_sweep)
from signal_sweep import (  # noqa: E402
    REPEATS,
    Tool,
    after,
    at_import,
    file_shows,
    first_lines,
    heavy_done,
    probe,
    shutdown,
    spread,
    sweep,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "edge" / "models" / "nerve_fixture_int8.tflite"
POINTS = ("first-lines", "imports", "start-up", "run", "shutdown")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")]


def edge_run() -> Tool:
    return Tool("edge-run", "edge.cli", [
        "--source", "phantom", "--headless", "--model", str(FIXTURE), "--max-frames", "600",
        "--record", "out.mp4", "--report", "run.json"], heavy="numpy")


def edge_bench() -> Tool:
    return Tool("edge-bench", "benchmarks.cli", [
        "latency", "--models", str(FIXTURE), "--threads", "1", "--runs", "3000",
        "--repeats", "1", "--in-process", "--out", "lat.json"], heavy="numpy")


# tool -> (markers: run started, run over; stderr lines a normal run prints)
MARKERS = {
    "edge-run": (("out.txt", "          outputs"), ("out.txt", "edge-run: stopped: max frames"),
                 ("record: writing", "edge-run: frame ")),
    "edge-bench": (("err.txt", "runs) ..."), ("err.txt", "edge-bench: wrote"),
                   ("edge-bench latency:", "  ", "latency: ", "edge-bench: wrote")),
}


def sweep_points(tool: Tool, tmp: Path, points=POINTS) -> dict:
    run_file, end_file, allowed = MARKERS[tool.prog]
    run_marker, end_marker = file_shows(Path(run_file[0]), run_file[1]), \
        file_shows(Path(end_file[0]), end_file[1])
    p = probe(tool, tmp, run_marker, end_marker)
    started_s, ended_run_s = p["markers"]
    plan = {
        "first-lines": dict(send=first_lines),
        "imports": dict(send=at_import, at=lambda i: int(spread(i, 0.95 * p["imports"]))),
        "start-up": dict(send=after(heavy_done, started_s)),
        "run": dict(send=after(run_marker, 0.8 * (ended_run_s - started_s))),
        "shutdown": shutdown(end_marker, p["ended_s"] - ended_run_s),
    }
    print(f"\n{tool.prog} probe: {p}", file=sys.stderr)
    return {point: sweep(tool, tmp, point, allowed_lines=allowed, **plan[point])
            for point in points}


@pytest.mark.parametrize("make_tool", [edge_run, edge_bench], ids=["edge-run", "edge-bench"])
def test_a_signal_at_any_moment_ends_with_130_and_one_line(make_tool, tmp_path):
    tallies = sweep_points(make_tool(), tmp_path)
    for point, tally in tallies.items():
        assert sum(tally.values()) == REPEATS, point
    # The import sweep really lands inside numpy's import (a signal there is held back).
    assert sum(n for where, n in tallies["imports"].items() if "numpy" in where) >= REPEATS // 2
    assert tallies["run"]["run"] >= REPEATS // 2  # raised in the run: the normal stop
