"""edge-train end to end on tiny synthetic data: run folder, resume, eval, fine-tune, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from train.cli import main

TINY = ["--input-size", "32x48", "--base-filters", "4", "--depth", "2", "--batch", "4",
        "--max-steps-per-epoch", "2", "--val-fraction", "0.34", "--progress", "0",
        "--threads", "1"]
RUN_FILES = ("model.keras", "best.weights.h5", "config.json", "split.json", "history.csv",
             "curves.png", "metrics.json")


def error_lines(err: str) -> list[str]:
    """The error lines of stderr (progress lines aside); asserts there is no traceback."""
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("edge-train: error:")]


def history_epochs(run):
    with open(run / "history.csv", newline="") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_kaggle):
    root = tmp_path_factory.mktemp("run")
    data = make_kaggle(root / "kaggle")
    run = root / "run"
    assert main(["--data", str(data), "--out", str(run), "--epochs", "2", *TINY]) == 0
    return data, run


def test_smoke_run_writes_the_run_folder(trained):
    data, run = trained
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    assert list((run / "ckpt").glob("ckpt-2.index")) and (run / "ckpt" / "state.json").is_file()
    if __import__("importlib").util.find_spec("tensorboard"):
        assert any((run / "tensorboard").rglob("events.out.tfevents.*"))
    cfg = json.loads((run / "config.json").read_text())
    for key in ("data", "layout", "nerve_class", "input_hw", "scale", "offset", "val_fraction",
                "seed", "model"):
        assert key in cfg, key
    assert cfg["layout"] == "kaggle" and cfg["input_hw"] == [32, 48]
    split = json.loads((run / "split.json").read_text())
    assert split["val_subjects"] and not set(split["val_subjects"]) & set(split["train_subjects"])
    assert history_epochs(run) == [0, 1]
    with open(run / "history.csv", newline="") as f:
        assert {"loss", "val_dice", "val_loss", "lr"} <= set(next(csv.DictReader(f)))
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["per_image_dice"] <= 1.0 and metrics["n_images"] == 12


def test_model_keras_loads_without_custom_objects(trained):
    import tf_keras

    _, run = trained
    model = tf_keras.models.load_model(run / "model.keras", compile=False)
    assert model.input_shape == (None, 32, 48, 1) and model.output_shape == (None, 32, 48, 1)
    out = model(np.zeros((1, 32, 48, 1), np.float32)).numpy()
    assert ((0 <= out) & (out <= 1)).all()


def test_resume_continues_from_the_checkpoint(trained, tmp_path):
    import shutil

    data, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert main(["--data", str(data), "--out", str(copy), "--epochs", "3", "--resume",
                 *TINY]) == 0
    assert history_epochs(copy) == [0, 1, 2]  # one more epoch, counter continued
    assert json.loads((copy / "ckpt" / "state.json").read_text())["epoch"] == 3
    assert (copy / "ckpt" / "ckpt-3.index").is_file()


def test_resume_without_checkpoint_is_a_user_error(kaggle_dir, tmp_path, capsys):
    data = kaggle_dir
    rc = main(["--data", str(data), "--out", str(tmp_path / "new"), "--resume", *TINY])
    lines = error_lines(capsys.readouterr().err)
    assert rc == 2 and len(lines) == 1 and "no checkpoint" in lines[0]


def test_eval_writes_metrics_and_overlays(trained, tmp_path, capsys):
    _, run = trained
    assert main(["eval", "--model", str(run), "--out", str(tmp_path / "ev")]) == 0
    result = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    said = capsys.readouterr().out  # the false-positive rate printed beside Dice
    assert "per-image Dice" in said and ("false positives" in said or "no empty frame" in said)
    assert "false_positive_rate" in result
    split = json.loads((run / "split.json").read_text())
    assert result["subjects"] == split["val_subjects"]  # default: the run's val subjects
    assert result["n_images"] == 12 and (tmp_path / "ev" / "overlays.png").is_file()


def test_eval_runs_a_tflite_model_through_the_edge_backend(kaggle_dir, tmp_path):
    pytest.importorskip("ai_edge_litert")
    model = Path(__file__).parents[2] / "edge" / "models" / "nerve_fixture_int8.tflite"
    if not model.is_file():
        pytest.skip(f"{model} not found")
    out = tmp_path / "ev"
    assert main(["eval", "--model", str(model), "--data", str(kaggle_dir), "--out", str(out)]) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["n_images"] == 24 and result["input_hw"] == [128, 176]
    assert (out / "overlays.png").is_file()


def test_fine_tune_on_folder_layout_from_init_weights(trained, folder_dir, tmp_path):
    _, run = trained
    folder = folder_dir
    out = tmp_path / "ft"
    args = ["--data", str(folder), "--layout", "folder", "--nerve-class", "1",
            "--init-weights", str(run / "model.keras"), "--freeze-encoder", "--epochs", "1",
            "--out", str(out), *TINY]
    assert main(args) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["layout"] == "folder" and cfg["init_weights"].endswith("model.keras")
    assert (out / "model.keras").is_file()


def test_init_weights_of_another_architecture_is_refused(trained, tmp_path, capsys):
    data, run = trained
    args = ["--data", str(data), "--out", str(tmp_path / "x"), "--init-weights",
            str(run / "model.keras"), "--epochs", "1", *TINY, "--base-filters", "8"]
    assert main(args) == 2
    assert "--init-weights" in capsys.readouterr().err


def test_presence_head_run(kaggle_dir, tmp_path):
    data = kaggle_dir
    out = tmp_path / "p"
    assert main(["--data", str(data), "--out", str(out), "--epochs", "1", "--presence-head",
                 "--augment", "strong", *TINY]) == 0
    with open(out / "history.csv", newline="") as f:
        assert "presence_loss" in next(csv.DictReader(f))


@pytest.mark.parametrize("problem", ["missing", "no_masks", "one_subject", "bad_size"])
def test_bad_input_exits_2_with_one_line(kaggle_dir, tmp_path, capsys, problem):
    data = kaggle_dir
    args = ["--data", str(data), "--out", str(tmp_path / "o"), *TINY]
    if problem == "missing":
        args[1] = str(tmp_path / "nowhere")
    elif problem == "no_masks":
        for m in data.glob("*_mask.png"):
            m.unlink()
    elif problem == "one_subject":
        for p in data.glob("*.png"):
            if not p.name.startswith("1_"):
                p.unlink()
    else:
        args += ["--input-size", "30x48"]
    assert main(args) == 2
    assert len(error_lines(capsys.readouterr().err)) == 1
    assert not (tmp_path / "o" / "model.keras").exists()


def test_reference_preset_parameter_count():
    from train.reference import REFERENCE_PARAMS, build_reference

    model = build_reference((128, 128))
    assert model.count_params() == REFERENCE_PARAMS
    assert 225_000 <= REFERENCE_PARAMS <= 237_000  # "231k parameters at 128x128"
    assert not any("concat" in layer.name or "add" in layer.name for layer in model.layers)
