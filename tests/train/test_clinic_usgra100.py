"""Issue 21's "Done when": the README's clinic commands, run verbatim on a fixed 100-frame draw
of USGRA-seg (a scanner the shipped model never saw), pass the default gate and install.

The draw: docs/data/usgra_clinic100.txt (100 image names, drawn once with a seeded RNG; the
file says how), laid out as a clinic folder (images/ + masks/, symlinks into the data folder).
The README's bash block under "A clinic's own scanner" runs from `edge-train eval --model
default` (before) through `edge-convert` and `edge-deploy install`, as written: no speed flags,
no --force, no --allow-low-dice, the real recipe (30 epochs at 208x208 on the 80 training
frames: minutes on 2 cores). The only changes: /path/clinic -> that folder; the model copied
to the board's /tmp/ -> a tmp folder here (the copy is made, as scp would); the board's state
folder (/var/lib/nerve-edge) -> a tmp one via `--state`. Skips without the data, with the
reason. The figures (before, after, the gate's held-out Dice, drop and false-positive rate)
are printed (pytest -s) for the model card.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import require_data
from tests.train.test_readme_finetune import MODULES, ROOT, fine_tune_part, recipe, run

DRAW = ROOT / "docs" / "data" / "usgra_clinic100.txt"
N_FRAMES = 100


def draw() -> list[str]:
    names = [ln.strip() for ln in DRAW.read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert len(names) == len(set(names)) == N_FRAMES
    return names


def clinic_folder(usgra: Path, root: Path) -> Path:
    """The draw as a clinic's labelled folder: images/NAME + masks/NAME (symlinks)."""
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
        for name in draw():
            src = usgra / sub / name
            assert src.is_file(), f"{src} missing: is {usgra} the prepared usgra-seg?"
            (root / sub / name).symlink_to(src)
    return root


def verbatim(cmd: list[str], clinic: Path, board_tmp: Path, state: Path) -> list[str]:
    """The README line with only /path/clinic, the board's /tmp/ copy and the state folder
    changed."""
    def one(word: str) -> str:
        if word == "/path/clinic":
            return str(clinic)
        return str(board_tmp / word[len("/tmp/"):]) if word.startswith("/tmp/") else word

    args = [one(a) for a in cmd[1:]]
    if cmd[0] == "edge-deploy":
        args += ["--state", str(state)]
    return [sys.executable, "-m", MODULES[cmd[0]], *args]


def test_the_draw_is_fixed():
    names = draw()
    assert names == sorted(names) and all(n.endswith(".png") for n in names)


@pytest.mark.slow
def test_readme_clinic_commands_on_100_usgra_frames_pass_the_gate_and_install(tmp_path):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("ai_edge_litert")
    clinic = clinic_folder(require_data("usgra-seg"), tmp_path / "clinic")
    cwd, board_tmp, state = tmp_path / "laptop", tmp_path / "board-tmp", tmp_path / "state"
    cwd.mkdir()
    board_tmp.mkdir()
    steps = fine_tune_part(recipe())
    assert [c[0] for c in steps][-2:] == ["edge-convert", "edge-deploy"]
    for cmd in steps:
        if cmd[0] == "edge-deploy":  # scp runs/clinic/export/clinic-int8.{tflite,json} board:/tmp/
            for f in (cwd / "runs/clinic/export").glob("clinic-int8.*"):
                shutil.copy(f, board_tmp / f.name)
        proc = run(verbatim(cmd, clinic, board_tmp, state), cwd)
        print(" ".join(cmd[:2]), "->", proc.stdout.strip().splitlines()[-1:] or proc.stderr[-300:])
        assert proc.returncode == 0, f"{' '.join(cmd)}: exit {proc.returncode}\n" \
            f"{proc.stderr[-3000:]}"
    before = json.loads((cwd / "runs/clinic-before/metrics.json").read_text())
    after = json.loads((cwd / "runs/clinic/eval/metrics.json").read_text())
    report = json.loads((cwd / "runs/clinic/export/conversion_report.json").read_text())
    int8 = next(v for v in report["variants"] if v["variant"] == "int8")
    print(f"before {before['per_image_dice']:.4f} on {before['n_images']} frames; after "
          f"{after['per_image_dice']:.4f} on {after['n_images']} held-out frames; gate int8 "
          f"Dice {int8['per_image_dice']:.4f}, drop {int8['dice_drop']:.4f}, FP rate "
          f"{int8['false_positive_rate']} of {int8['n_empty_truth']} empty frames")
    assert report["gate"]["passed"] and not report["gate"]["below_min_dice"]
    current = state / "models" / "current"
    assert (current / "model.tflite").read_bytes() == \
        (cwd / "runs/clinic/export/clinic-int8.tflite").read_bytes()
