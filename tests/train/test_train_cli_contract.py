"""edge-train's CLI contract (edge.clikit) in real subprocesses: SIGTERM keeps the checkpoint
and --resume continues; a missing TensorFlow and a bad path are one line and exit 2; partial
files of a killed run are removed by the next run; a failure before training leaves no empty
run folder; masks of another size than their image are refused (or resized when asked)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from tests.cli_contract import (
    EXIT_INTERRUPTED,
    assert_one_error,
    assert_options_documented,
    partial_files,
    run_tool,
    terminate_when,
)
from train.cli import eval_parser, main, train_parser

TINY = ["--input-size", "32x48", "--base-filters", "4", "--depth", "2", "--batch", "4",
        "--max-steps-per-epoch", "2", "--val-fraction", "0.34", "--progress", "0",
        "--threads", "1"]
# The device install (make venv-edge): no TensorFlow.
DEVICE_PYTHON = Path(__file__).resolve().parents[2] / ".venv-edge" / "bin" / "python"
INSTALL = "pip install -e '.[train]'"


def test_every_option_has_help_and_default():
    assert_options_documented(train_parser())
    assert_options_documented(eval_parser())


def test_sigterm_keeps_the_checkpoint_and_resume_continues(kaggle_dir, tmp_path):
    run = tmp_path / "run"
    state = run / "ckpt" / "state.json"
    args = ["--data", str(kaggle_dir), "--out", str(run), "--epochs", "1000", "--patience",
            "0", *TINY]
    rc, log = terminate_when("train.cli", args, state.is_file, tmp_path / "log.txt")
    assert rc == EXIT_INTERRUPTED, log[-3000:]
    assert "terminated (SIGTERM)" in log and "--resume" in log and "Traceback" not in log
    assert "InitializeLog" not in log and "cuda" not in log.lower()  # TensorFlow start-up noise
    assert partial_files(run) == []
    done = json.loads(state.read_text())["epoch"]
    assert done >= 1 and (run / "model.keras").is_file()
    (run / ".curves.x1y2.png").write_bytes(b"half a png")  # as an older killed run left it
    (run / ".model.abc.tmp.keras").write_bytes(b"half a model")
    assert main([*args[:4], "--epochs", str(done + 1), "--resume", *TINY]) == 0
    assert json.loads(state.read_text())["epoch"] == done + 1
    assert partial_files(run) == []


def test_missing_tensorflow_is_one_line(kaggle_dir, tmp_path):
    proc = run_tool("train.cli", ["--data", str(kaggle_dir), "--out", str(tmp_path / "r")],
                    hide=["tensorflow"])
    assert_one_error(proc, "edge-train", "tensorflow", INSTALL)
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(not DEVICE_PYTHON.is_file(), reason=f"no device venv at {DEVICE_PYTHON}")
def test_device_install_without_tensorflow_is_one_line(kaggle_dir, tmp_path):
    proc = run_tool("train.cli", ["--data", str(kaggle_dir), "--out", str(tmp_path / "r")],
                    python=str(DEVICE_PYTHON))
    assert_one_error(proc, "edge-train", INSTALL)


def test_bad_path_is_one_line(tmp_path):
    proc = run_tool("train.cli", ["--data", str(tmp_path / "nowhere"), "--out",
                                  str(tmp_path / "r"), *TINY])
    assert_one_error(proc, "edge-train", "nowhere")
    assert not (tmp_path / "r").exists()


def test_failure_before_training_leaves_no_empty_run_folder(kaggle_dir, tmp_path, capsys):
    out = tmp_path / "new" / "run"
    assert main(["--data", str(kaggle_dir), "--out", str(out), *TINY,
                 "--input-size", "30x48"]) == 2  # not divisible by the depth: model error
    assert "30x48" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def _shrink_one_mask(data: Path) -> Path:
    mask = sorted(data.glob("*_mask.png"))[1]
    img = cv2.imread(str(mask), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(mask), cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2),
                                      interpolation=cv2.INTER_NEAREST))
    return mask


def test_mask_of_another_size_is_refused_naming_the_file(kaggle_dir, tmp_path, capsys):
    mask = _shrink_one_mask(kaggle_dir)
    args = ["--data", str(kaggle_dir), "--out", str(tmp_path / "r"), "--epochs", "1", *TINY]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert mask.name in err and "--resize-masks" in err and "24x16" in err
    assert main([*args, "--resize-masks"]) == 0


def test_partial_files_are_told_from_the_run_files(tmp_path):
    from train.loop import remove_partial_files

    keep = ["model.keras", "config.json", ".tmp_notes", "ckpt/checkpoint", "ckpt/state.json",
            "ckpt/ckpt-3.index"]
    partial = [".model.k2j4.tmp.keras", ".curves.x1y2.png", ".tmp-123-model.keras",
               ".state.json.ab12.tmp", "ckpt/ckpt-4_temp/part-0", "ckpt/checkpoint.tmp9f3e"]
    for name in keep + partial:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    remove_partial_files(tmp_path)
    assert all((tmp_path / n).exists() for n in keep)
    assert not any((tmp_path / n).exists() for n in partial)
    assert not (tmp_path / "ckpt" / "ckpt-4_temp").exists()
