"""README.md's clinic loop, its fine-tune part run as written from a folder outside the
repository.

The commands are read from the README's bash block under "A clinic's own scanner:
fine-tuning" (the whole loop: capture on the board, select, Label Studio, fine-tune, convert,
install). Run here: from `edge-train eval --model default` (before) through `edge-convert`,
then `edge-deploy install` and `edge-run` on what the service runs (models/current). The
capture (a camera), the copies (scp), Label Studio (tests/label) and systemctl are not.
Changed: only the --data folder (/path/clinic -> a tiny synthetic folder-layout set, masks
with class ids), the board's /tmp/ copy (-> the export itself) and its state folder (--state
in the working folder). Added, for speed only: --epochs 1 --max-steps-per-epoch 2 --threads 1
--progress 0 on edge-train; --formats int8,onnx --prune-epochs 1 --latency-runs 3 on
edge-convert (the two files the recipe promises). The --out folders stay as written:
relative, so they land in the temporary working folder.

A 1-epoch fine-tune on 24 synthetic frames is a bad model: edge-convert must refuse it at the
Dice floor (exit 1, the message, nothing written), then write it under --allow-low-dice;
edge-deploy must then refuse it without --force, and install it with.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## A clinic's own scanner: fine-tuning"
MODULES = {"edge-train": "train.cli", "edge-convert": "convert.cli", "edge-run": "edge.cli",
           "edge-deploy": "edge.deploy_cli"}
SPEED = {
    "edge-train": ["--epochs", "1", "--max-steps-per-epoch", "2", "--threads", "1",
                   "--progress", "0"],
    "edge-convert": ["--formats", "int8,onnx", "--prune-epochs", "1", "--latency-runs", "3"],
    "edge-run": [],
    "edge-deploy": [],
}
EVAL_SPEED: list[str] = []  # edge-train eval: fast as written
NO_CAMERA = ["--source", "phantom", "--headless", "--max-frames", "5"]
BOARD_COPY = "/tmp/"  # where the README copies the model on the board (scp)
N_FRAMES, FRAME_HW = 24, (96, 128)
STEP_TIMEOUT_S = 600


def recipe() -> list[list[str]]:
    """The README section's bash commands, continuation lines joined, comments dropped; a
    board's `sudo [-u USER]` and a venv path dropped (edge-deploy, not
    /opt/nerve-edge/venv/bin/edge-deploy)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(SECTION):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    joined = re.sub(r"\\\n\s*", " ", block)
    cmds = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words[:2] == ["sudo", "-u"]:
            words = words[3:]
        elif words[:1] == ["sudo"]:
            words = words[1:]
        if words:
            cmds.append([Path(words[0]).name, *words[1:]])
    return cmds


def fine_tune_part(cmds: list[list[str]]) -> list[list[str]]:
    """From `edge-train eval --model default` (the before-score) through `edge-deploy
    install`: what runs on the laptop, then the install on the board."""
    start = next(i for i, c in enumerate(cmds) if c[:4] == ["edge-train", "eval", "--model",
                                                          "default"])
    end = next(i for i, c in enumerate(cmds) if c[:2] == ["edge-deploy", "install"])
    return [c for c in cmds[start:end + 1] if c[0] in MODULES]


def write_clinic(root: Path, seed: int = 0) -> Path:
    """images/NNNN.png + masks/NNNN.png (class id 1 = a dark ellipse on speckle)."""
    rng = np.random.default_rng(seed)
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    h, w = FRAME_HW
    for k in range(N_FRAMES):
        img = np.clip(rng.normal(120, 30, (h, w)), 0, 255).astype(np.uint8)
        mask = np.zeros((h, w), np.uint8)
        center = (int(rng.integers(30, w - 30)), int(rng.integers(25, h - 25)))
        cv2.ellipse(mask, center, (18, 11), float(rng.integers(0, 180)), 0, 360, 1, -1)
        img[mask > 0] //= 3
        cv2.imwrite(str(root / "images" / f"{k:04d}.png"), img)
        cv2.imwrite(str(root / "masks" / f"{k:04d}.png"), mask)
    return root


def as_run(cmd: list[str], data: Path, export: Path | None = None,
           state: Path | None = None) -> list[str]:
    """The README command with --data replaced and the speed flags added; edge-deploy's
    board copy -> ``export``, its state folder -> ``state``."""
    tool, args = cmd[0], list(cmd[1:])
    if "--data" in args:
        args[args.index("--data") + 1] = str(data)
    if tool == "edge-deploy":
        args = [str(export / Path(a).name) if a.startswith(BOARD_COPY) else a for a in args]
        args += ["--state", str(state)]
    extra = EVAL_SPEED if args[:1] == ["eval"] else SPEED[tool]
    return [sys.executable, "-m", MODULES[tool], *args, *extra]


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's code, not an install's
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=STEP_TIMEOUT_S, check=False)


def test_the_recipe_is_the_whole_loop_with_no_repo_paths_and_no_architecture_flags():
    cmds = recipe()
    said = [" ".join(c[:2]) for c in cmds]
    for step in ("edge-run --camera", "edge-train select", "edge-train label", "edge-train eval",
                 "edge-convert runs/clinic", "edge-deploy install", "systemctl restart",
                 "edge-deploy rollback"):
        assert any(s.startswith(step) for s in said), step
    part = fine_tune_part(cmds)
    assert [c[0] for c in part] == ["edge-train", "edge-train", "edge-train", "edge-convert",
                                    "edge-deploy"]
    words = [w for c in part for w in c]
    assert "default" in words and not any(w.startswith(("edge/", "./")) for w in words)
    for flag in ("--base-filters", "--depth", "--stem-stride", "--arch", "--force"):
        assert flag not in words, flag  # the init model's; no forced install in the recipe


@pytest.mark.slow
def test_the_recipe_runs_from_any_folder(tmp_path):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("ai_edge_litert")
    data = write_clinic(tmp_path / "clinic-data")
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    export, state = cwd / "runs/clinic/export", tmp_path / "board-state"
    before, train, after, convert, install = (as_run(c, data, export, state)
                                              for c in fine_tune_part(recipe()))
    for step in (before, train, after):
        proc = run(step, cwd)
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert (cwd / "runs/clinic-before/metrics.json").is_file()
    cfg = json.loads((cwd / "runs/clinic/config.json").read_text())
    assert cfg["init_weights"] == "default" and cfg["model"]["base_filters"] > 0
    assert (cwd / "runs/clinic/model.keras").is_file()
    dice = json.loads((cwd / "runs/clinic/eval/metrics.json").read_text())["per_image_dice"]
    assert dice < 0.5  # a 2-step fine-tune: the floor below must refuse it

    refused = run(convert, cwd)
    assert refused.returncode == 1, refused.stderr[-2000:]
    (line,) = [x for x in refused.stderr.splitlines() if x.startswith("edge-convert: error:")]
    assert "gate failed, nothing written" in line and "below the floor --min-dice 0.5" in line
    assert "--allow-low-dice" in line
    assert not export.exists()

    forced = run([*convert, "--allow-low-dice"], cwd)
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert "edge-convert: warning:" in forced.stderr
    assert (export / "clinic-int8.tflite").is_file() and (export / "clinic-onnx.onnx").is_file()
    report = json.loads((export / "conversion_report.json").read_text())
    assert report["gate"]["below_min_dice"] is True

    not_forced = run(install, cwd)  # written below the floor: the board wants --force
    assert not_forced.returncode == 2 and "--force" in not_forced.stderr
    assert run([*install, "--force"], cwd).returncode == 0
    current = state / "models" / "current"
    edge_run = [sys.executable, "-m", MODULES["edge-run"], "--model", str(current), *NO_CAMERA]
    proc = run(edge_run, cwd)
    assert proc.returncode == 0, proc.stderr[-2000:]
