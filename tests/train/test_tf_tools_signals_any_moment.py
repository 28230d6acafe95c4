"""Ctrl-C and SIGTERM at any moment of edge-train and edge-convert: from the entry module's
first lines, during TensorFlow's import (where one once ended in "ImportError: initialization
failed" and "Fatal Python error: PyThreadState_Get", exit -6), start-up (data, model), the run
(epochs, conversion) and the shutdown, NERVE_EDGE_SIGNAL_REPEATS (20) sends per point, each
ending with 130 and one line (tests/signal_sweep.py says how the sends are timed). A tiny model
on tiny data: the points, not the work, are what is tested."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (signal_sweep)
from signal_sweep import REPO, Tool, assert_swept, sweep_all  # noqa: E402

TINY = ["--input-size", "32x48", "--base-filters", "4", "--depth", "2", "--batch", "4",
        "--max-steps-per-epoch", "2", "--val-fraction", "0.34", "--progress", "0",
        "--threads", "1"]
TRAIN_LINES = ("loading frames:", "edge-train: warning:")
CONVERT_LINES = ("loading frames:", "  warnings.warn(", "fully_quantize:", "edge-convert: warning:")

# TensorFlow's tools start in seconds, so 20 sends at all five points cost ~10 minutes of the
# suite's budget: 20 where TensorFlow loads (first lines, its import: the failure this guards
# against), LIGHT at the points the edge sweep also covers at 20 (the same edge.signals code).
# NERVE_EDGE_SIGNAL_LIGHT=20 runs 20 everywhere.
LIGHT = int(os.environ.get("NERVE_EDGE_SIGNAL_LIGHT", "6"))
FEWER = {"start-up": LIGHT, "run": LIGHT, "shutdown": LIGHT}

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")]


def edge_train(data: Path) -> Tool:
    return Tool("edge-train", "train.cli", [
        "--data", str(data), "--out", "run", "--epochs", "5", "--patience", "0", *TINY],
        heavy="tensorflow", run_marker=("run/ckpt/state.json", ""),
        end_marker=("out.txt", "validation (best model)"), allowed=TRAIN_LINES, clean=("run",))


def edge_convert(run: Path) -> Tool:
    return Tool("edge-convert", "convert.cli", [
        str(run), "--out", "out", "--formats", "int8", "--prune", "0", "--latency-runs", "1",
        "--max-dice-drop", "1", "--allow-low-dice"], heavy="tensorflow",
        run_marker=("out.txt", "edge-convert: resolved config"),
        end_marker=("out.txt", "edge-convert: wrote"), allowed=CONVERT_LINES, clean=("out",))


def test_edge_train_ends_with_130_and_one_line_whenever_signalled(kaggle_dir, tmp_path):
    assert_swept(sweep_all(edge_train(kaggle_dir), tmp_path, repeats=FEWER), "tensorflow",
                 FEWER)


def test_edge_convert_ends_with_130_and_one_line_whenever_signalled(kaggle_dir, tmp_path):
    run = tmp_path / "trained"
    subprocess.run([sys.executable, "-m", "train.cli", "--data", str(kaggle_dir), "--out",
                    str(run), "--epochs", "1", *TINY], check=True, cwd=REPO,
                   capture_output=True)
    (tmp_path / "sweep").mkdir()
    assert_swept(sweep_all(edge_convert(run), tmp_path / "sweep", repeats=FEWER),
                 "tensorflow", FEWER)
    shutil.rmtree(run)
