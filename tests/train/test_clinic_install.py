"""A clinic's loop, end to end on a tiny labelled folder: fine-tune -> convert (--min-dice 0:
a measurement) -> edge-deploy install (--force: a 2-step model is below the floor) ->
rollback -> the path the systemd unit's --model names (models/current) runs the previous
model again."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.train.test_readme_finetune import ROOT, run, write_clinic

TRAIN = ["--layout", "folder", "--nerve-class", "1", "--init-weights", "default", "--epochs",
         "1", "--max-steps-per-epoch", "2", "--threads", "1", "--progress", "0"]


@pytest.mark.slow
def test_fine_tune_convert_install_rollback(tmp_path):
    pytest.importorskip("tf2onnx")
    data = write_clinic(tmp_path / "clinic")
    py = sys.executable
    steps = [
        [py, "-m", "train.cli", "--data", str(data), *TRAIN, "--out", "runs/clinic"],
        [py, "-m", "convert.cli", "runs/clinic", "--out", "runs/clinic/export", "--formats",
         "int8", "--min-dice", "0", "--latency-runs", "2"],
        [py, "-m", "edge.deploy_cli", "install", "default", "--state", "state"],
    ]
    for step in steps:
        proc = run(step, tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
    model = tmp_path / "runs/clinic/export/clinic-int8.tflite"
    install = [py, "-m", "edge.deploy_cli", "install", str(model), "--state", "state"]
    refused = run(install, tmp_path)
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert run([*install, "--force"], tmp_path).returncode == 0
    current = tmp_path / "state/models/current"
    assert (current / "model.tflite").read_bytes() == model.read_bytes()

    assert run([py, "-m", "edge.deploy_cli", "rollback", "--state", "state"],
               tmp_path).returncode == 0
    shipped = ROOT / "edge/models/nerve_default_int8.tflite"
    assert (current / "model.tflite").read_bytes() == shipped.read_bytes()
    report = tmp_path / "run.json"  # what the unit runs: edge-run --model .../models/current
    proc = run([py, "-m", "edge.cli", "--model", str(current), "--source", "phantom",
                "--headless", "--max-frames", "3", "--quiet", "--report", str(report)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ran = json.loads(report.read_text())
    assert ran["model_sha256"] == json.loads(shipped.with_suffix(".json").read_text())["sha256"]
    assert Path(ran["model_path"]).parent.name.startswith("nerve-unet")
