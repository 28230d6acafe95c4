"""deploy/ansible/install-model.yml runs the same edge-deploy install on a board: here the board
is this machine (`connection: local`), the state folder a temp one, no sudo, no restart."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "deploy" / "ansible" / "install-model.yml"
MODELS = REPO / "edge" / "models"
PLAYBOOK_BIN = Path(sys.executable).with_name("ansible-playbook")

pytestmark = pytest.mark.skipif(not PLAYBOOK_BIN.exists(),
                                reason="ansible-core is not installed (pip install -e '.[fleet]')")


def play(model: Path, state: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(state.parent / "ans"),
               ANSIBLE_REMOTE_TEMP=str(state.parent / "ans"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return subprocess.run(
        [str(PLAYBOOK_BIN), "-i", "localhost,", "-c", "local", str(PLAYBOOK),
         "-e", "boards=all", "-e", f"model={model}", "-e", f"state_dir={state}",
         "-e", f"edge_deploy='{sys.executable} -m edge.deploy_cli'",
         "-e", "use_become=false", "-e", "restart=false",
         "-e", f"ansible_python_interpreter={sys.executable}", *extra],
        capture_output=True, text=True, env=env, timeout=600)


def staging_left(tmp_root: Path) -> list[Path]:
    return list(tmp_root.glob("ansible*.nerve-edge-model"))


def test_playbook_installs_keeps_previous_and_cleans_up(tmp_path):
    state = tmp_path / "state"
    first = play(MODELS / "nerve_default_int8.tflite", state)
    assert first.returncode == 0, first.stdout[-3000:]
    second = play(MODELS / "nerve_default.onnx", state)
    assert second.returncode == 0, second.stdout[-3000:]
    models = state / "models"
    assert (models / "current" / "model.onnx").is_file()
    assert (models / "previous" / "model.tflite").is_file()
    status = subprocess.run([sys.executable, "-m", "edge.deploy_cli", "status", "--json",
                             "--state", str(state)], capture_output=True, text=True, cwd=REPO)
    assert json.loads(status.stdout)["previous"]["model"] == "model.tflite"
    assert not staging_left(Path("/tmp"))


def test_playbook_fails_on_a_refused_model_and_changes_nothing(tmp_path):
    state = tmp_path / "state"
    assert play(MODELS / "nerve_default_int8.tflite", state).returncode == 0
    bad = tmp_path / "bad.tflite"
    shutil.copyfile(MODELS / "nerve_default_int8.tflite", bad)
    meta = json.loads((MODELS / "nerve_default_int8.json").read_text())
    meta["sha256"] = "0" * 64
    bad.with_suffix(".json").write_text(json.dumps(meta))
    out = play(bad, state)
    assert out.returncode != 0
    assert "does not match its sidecar" in out.stdout
    assert sorted(p.name for p in (state / "models").iterdir()) == [
        "current", "nerve-unet-b12-all39-v2-5eecc5d35fdd"]
    assert not staging_left(Path("/tmp"))
