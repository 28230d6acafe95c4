"""edge-deploy: install a converted model, keep the previous one, roll back; refusals are one
line and exit 2 and leave the installed models as they were. Real subprocesses for the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.model import store as inst
from edge.model.metadata import sha256_file
from edge.model.store import ModelStore

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "edge" / "models"
INT8 = MODELS / "nerve_default_int8.tflite"
ONNX = MODELS / "nerve_default.onnx"


def tool(*args: str, module: str = "edge.deploy_cli") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env.pop("STATE_DIRECTORY", None)
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)


def copy_model(src: Path, dest_dir: Path, name: str | None = None, **sidecar) -> Path:
    """``src`` and its sidecar copied to dest_dir; sidecar keys updated (``extra`` merged)."""
    dest = dest_dir / (name or src.name)
    shutil.copyfile(src, dest)
    meta = json.loads(src.with_suffix(".json").read_text())
    meta["extra"].update(sidecar.pop("extra", {}))
    meta.update(sidecar)
    dest.with_suffix(".json").write_text(json.dumps(meta))
    return dest


def snapshot(state: Path) -> dict:
    root = state / "models"
    if not root.exists():
        return {}
    return {p.name: (os.readlink(p) if p.is_symlink() else "dir") for p in root.iterdir()}


def test_install_rollback_and_edge_run_follows_current(tmp_path):
    state = tmp_path / "state"
    first = tool("install", str(INT8), "--state", str(state))
    assert first.returncode == 0, first.stderr
    assert "systemctl restart nerve-edge" in first.stdout
    second = tool("install", str(ONNX), "--state", str(state))
    assert second.returncode == 0, second.stderr
    status = json.loads(tool("status", "--json", "--state", str(state)).stdout)
    assert status["current"]["model"] == "model.onnx"
    assert status["previous"]["model"] == "model.tflite"
    assert status["current"]["gate"]["per_image_dice"] > 0.5
    back = tool("rollback", "--state", str(state))
    assert back.returncode == 0, back.stderr
    current = state / "models" / "current"
    assert (current / "model.tflite").read_bytes() == INT8.read_bytes()
    assert os.readlink(state / "models" / "previous") == status["current"]["folder"].split("/")[-1]
    # the unit's --model names models/current: edge-run runs the rolled-back int8 model
    report = tmp_path / "run.json"
    run = tool("--source", "phantom", "--headless", "--max-frames", "5", "--quiet",
               "--model", str(current), "--report", str(report), module="edge.cli")
    assert run.returncode == 0, run.stderr
    ran = json.loads(report.read_text())
    assert Path(ran["model_path"]).name == "model.tflite"
    assert Path(ran["model_path"]).parent.name != "current"  # the real folder: an audit trail
    assert ran["model_sha256"] == json.loads(INT8.with_suffix(".json").read_text())["sha256"]
    text = tool("status", "--state", str(state)).stdout
    assert "current" in text and "previous" in text and "Dice" in text


def test_reinstalling_the_current_model_keeps_previous(tmp_path):
    store = ModelStore(tmp_path)
    assert store.install("default").model.read_bytes() == INT8.read_bytes()
    store.install(INT8)
    store.install(ONNX)
    store.install(ONNX)
    assert store.previous().model.name == "model.tflite"
    assert store.current().model.name == "model.onnx"


def test_forced_gate_needs_force(tmp_path):
    low = copy_model(INT8, tmp_path, "low.tflite", extra={"gate": {
        "min_dice": 0.5, "below_min_dice": True, "max_dice_drop": 0.01, "warnings": []}})
    state = tmp_path / "state"
    refused = tool("install", str(low), "--state", str(state))
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "--force" in refused.stderr
    assert snapshot(state) == {}  # nothing copied
    forced = tool("install", str(low), "--state", str(state), "--force")
    assert forced.returncode == 0, forced.stderr
    status = json.loads(tool("status", "--json", "--state", str(state)).stdout)
    assert status["current"]["gate"]["forced_below_floor"] is True
    assert "FORCED" in tool("status", "--state", str(state)).stdout


def test_a_model_below_the_floor_needs_force_however_it_was_converted(tmp_path):
    low = copy_model(INT8, tmp_path, "m0.tflite", extra={
        "validation": {"per_image_dice": 0.05, "n_images": 20},
        "gate": {"min_dice": 0.0, "below_min_dice": False, "max_dice_drop": 0.01}})
    with pytest.raises(inst.UserInputError, match=r"Dice 0\.0500 .* --min-dice 0\).*--force"):
        ModelStore(tmp_path).install(low)
    assert ModelStore(tmp_path).install(low, force=True).meta.name


@pytest.mark.parametrize("case", ["not-a-model", "bad-sha256", "no-sidecar", "no-sha256",
                                  "keras", "missing"])
def test_refusals_leave_the_installs_alone(tmp_path, case):
    state = tmp_path / "state"
    ModelStore(state).install(INT8)
    before = snapshot(state)
    if case == "not-a-model":
        bad = tmp_path / "junk.tflite"
        bad.write_bytes(os.urandom(4096))
        meta = json.loads(INT8.with_suffix(".json").read_text())
        meta["sha256"] = sha256_file(bad)  # a sidecar that matches: only the content is wrong
        bad.with_suffix(".json").write_text(json.dumps(meta))
        needle = "junk.tflite"
    elif case == "bad-sha256":
        bad = copy_model(INT8, tmp_path, sha256="0" * 64)
        needle = "sha256"
    elif case == "no-sidecar":
        bad = tmp_path / "bare.tflite"
        shutil.copyfile(INT8, bad)
        needle = "sidecar"
    elif case == "no-sha256":
        bad = copy_model(INT8, tmp_path, sha256=None)
        needle = "sha256"
    elif case == "keras":
        bad = MODELS / "nerve_default_float.keras"
        needle = "edge-convert"
    else:
        bad = tmp_path / "nowhere.tflite"
        needle = "nowhere.tflite"
    out = tool("install", str(bad), "--state", str(state))
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stderr.startswith("edge-deploy: error:") and out.stderr.count("\n") == 1
    assert needle in out.stderr
    assert snapshot(state) == before


def test_rollback_with_nothing_before(tmp_path):
    out = tool("rollback", "--state", str(tmp_path))
    assert out.returncode == 2 and "no previous model" in out.stderr
    ModelStore(tmp_path).install(INT8)
    out = tool("rollback", "--state", str(tmp_path))
    assert out.returncode == 2 and "no previous model" in out.stderr


def test_a_copy_that_fails_leaves_no_half_install(tmp_path, monkeypatch):
    store = ModelStore(tmp_path)
    store.install(INT8)
    before = snapshot(tmp_path)
    real = shutil.copyfile

    def failing(src, dst, *a, **k):
        if str(src).endswith(".json"):  # the model is copied, then the disk fills
            raise OSError(28, "No space left on device")
        return real(src, dst, *a, **k)

    monkeypatch.setattr(inst.shutil, "copyfile", failing)
    with pytest.raises(OSError):
        store.install(ONNX)
    assert snapshot(tmp_path) == before  # no staging folder left, current unchanged
    assert store.current().model.name == "model.tflite"


def test_default_state_dir_follows_systemd(monkeypatch, tmp_path):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    assert inst.default_state_dir() == tmp_path
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.delenv("NERVE_EDGE_STATE", raising=False)
    assert inst.default_state_dir() == Path("/var/lib/nerve-edge")


def test_status_line_shows_the_drop_and_the_false_positive_rate():
    from edge.deploy_cli import _line

    entry = {"name": "clinic", "version": "1", "sha256": "ab" * 32, "folder": "f",
             "gate": {"per_image_dice": 0.6, "dice_drop": 0.0002, "min_dice": 0.5,
                      "false_positive_rate": 0.25, "n_empty_truth": 8}}
    line = _line("current", entry)
    assert "Dice 0.6000 (floor 0.5), drop 0.0002, false positives 0.2500 of 8 empty" in line
