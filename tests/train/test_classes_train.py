"""Multi-class training (issue 16): the per-channel loss, a C-channel head initialised from a
nerve-only model, the class list in the run folder, and edge-train cv on tiny synthetic
folder-layout data (ids 1 = nerve disc, 2 = vessel corner)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from train.cli import main
from train.losses import bce_dice_per_image, multi_bce_dice_per_image
from train.modelio import load_keras

TINY = ["--input-size", "32x48", "--base-filters", "4", "--depth", "2", "--batch", "4",
        "--max-steps-per-epoch", "2", "--progress", "0", "--threads", "1"]
CLASSES = ["--classes", "1,2", "--class-names", "nerve,vessel"]


def test_multi_loss_is_the_mean_of_the_per_channel_losses():
    rng = np.random.default_rng(0)
    t = (rng.random((3, 8, 8, 2)) > 0.7).astype(np.float32)
    p = rng.random((3, 8, 8, 2)).astype(np.float32)
    per = [bce_dice_per_image(t[..., k:k + 1], p[..., k:k + 1]).numpy() for k in range(2)]
    got = multi_bce_dice_per_image(t, p).numpy()
    np.testing.assert_allclose(got, (per[0] + per[1]) / 2, rtol=1e-6)
    one = multi_bce_dice_per_image(t[..., :1], p[..., :1]).numpy()
    np.testing.assert_allclose(one, per[0], rtol=1e-6)  # one channel = the nerve-only loss


@pytest.fixture(scope="module")
def nerve_run(tmp_path_factory, make_folder):
    root = tmp_path_factory.mktemp("classes")
    data = make_folder(root / "folder")
    run = root / "nerve"
    assert main(["--data", str(data), "--out", str(run), "--epochs", "1", "--val-fraction",
                 "0.34", *TINY]) == 0
    return data, run


def test_nerve_vessel_run_from_a_nerve_model(nerve_run, tmp_path, capsys):
    data, nerve = nerve_run
    run = tmp_path / "nv"
    assert main(["--data", str(data), "--out", str(run), "--epochs", "1", "--val-fraction",
                 "0.34", "--init-weights", str(nerve / "model.keras"), *CLASSES, *TINY]) == 0
    out = capsys.readouterr().out
    assert "channel 0 = its nerve channel, the other 1 channel(s) fresh" in out
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["classes"] == [
        {"id": 1, "name": "nerve", "color": "#ffc800", "safety": False},
        {"id": 2, "name": "vessel", "color": "#ff3030", "safety": True}]
    model = load_keras(run / "model.keras")
    assert model.output_shape == (None, 32, 48, 2)
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["classes"]) == {"nerve", "vessel"}
    assert metrics["classes"]["vessel"]["n_present"] > 0


def test_init_copies_the_nerve_head_into_its_channel(nerve_run):
    import tf_keras as keras

    from train.build import init_from_nerve
    from train.model import build_unet

    _, nerve = nerve_run
    source = load_keras(nerve / "model.keras")
    keras.utils.set_random_seed(1)
    model = build_unet(input_hw=(32, 48), base_filters=4, depth=2, num_classes=2)
    fresh = model.get_layer("logits").get_weights()[0][..., 0].copy()
    line = init_from_nerve(model, source, nerve_index=1)
    assert "channel 1" in line
    k_src, b_src = source.get_layer("logits").get_weights()
    k, b = model.get_layer("logits").get_weights()
    np.testing.assert_array_equal(k[..., 1], k_src[..., 0])
    assert b[1] == b_src[0]
    np.testing.assert_array_equal(k[..., 0], fresh)  # the other channel keeps its fresh init
    assert b[0] == pytest.approx(np.log(0.01 / 0.99))  # ... and starts at p = 1%
    np.testing.assert_array_equal(model.get_layer("stem_conv").get_weights()[0],
                                  source.get_layer("stem_conv").get_weights()[0])


def test_cv_writes_per_fold_and_summary(nerve_run, tmp_path):
    data, _ = nerve_run
    results = tmp_path / "cv.json"
    argv = ["cv", "--folds", "2", "--results", str(results), "--label", "nv",
            "--min-areas", "0,2000", "--",
            "--data", str(data), "--out", str(tmp_path / "cv"), "--epochs", "1", *CLASSES,
            *TINY]
    assert main(argv) == 0
    doc = json.loads(results.read_text())
    assert doc["folds"] == 2 and len(doc["per_fold"]) == 2
    vessel = doc["summary"]["vessel"]
    counts = vessel["counts"]
    assert counts["tp"] + counts["fn"] + counts["fp"] + counts["tn"] == 24  # every frame once
    assert set(vessel["per_image_dice"]) == {"mean", "std"}
    sweep = doc["decision_sweep"]["settings"]
    assert sweep["threshold=0.5,min_area=0"]["vessel"]["counts"] == counts  # run's settings
    none_left = sweep["threshold=0.5,min_area=2000"]["vessel"]["counts"]  # > the 32x48 frame
    assert none_left["tp"] == none_left["fp"] == 0
    fold0 = json.loads((tmp_path / "cv" / "fold0" / "config.json").read_text())
    assert (fold0["folds"], fold0["fold"]) == (2, 0)


def test_cv_of_a_nerve_only_unetpp_int8_sweep_and_choice(nerve_run, tmp_path):
    """Nerve-only folds (kaggle-like single class): int8 per fold, the threshold x min-area
    sweep on the int8 models, the chosen decision, and the U-Net++ head cuts."""
    data, _ = nerve_run
    results = tmp_path / "cv.json"
    argv = ["cv", "--folds", "2", "--results", str(results), "--label", "pp", "--int8",
            "--thresholds", "0.5,0.9", "--min-areas", "0,2000", "--min-detection", "0.0",
            "--", "--data", str(data), "--out", str(tmp_path / "cv"), "--epochs", "1",
            "--arch", "unetpp", *TINY]
    assert main(argv) == 0
    doc = json.loads(results.read_text())
    for k in range(2):
        assert (tmp_path / "cv" / f"fold{k}" / "export" / f"fold{k}-int8.tflite").is_file()
    nerve = doc["int8_summary"]["nerve"]
    assert len(doc["int8_per_fold"]) == 2 and set(nerve["per_image_dice"]) == {"mean", "std"}
    assert doc["int8_drop"]["nerve"] == pytest.approx(
        doc["summary"]["nerve"]["per_image_dice"]["mean"] - nerve["per_image_dice"]["mean"])
    assert doc["decision_sweep"]["models"] == "int8"
    assert len(doc["decision_sweep"]["settings"]) == 4
    chosen = doc["chosen_decision"]
    assert chosen["key"] in doc["decision_sweep"]["settings"]
    fp = {k: s["nerve"]["all_folds_false_positive_rate"] or 0.0
          for k, s in doc["decision_sweep"]["settings"].items()}
    assert fp[chosen["key"]] == min(fp.values())  # --min-detection 0: every setting qualifies
    heads = doc["heads_sweep"]
    assert set(heads) == {"1", "2"} and heads["1"]["gmac"] < heads["2"]["gmac"]
    assert doc["all_frames_per_image_dice"]["mean"] is not None


def test_folds_1_trains_on_every_frame_without_per_epoch_scores(nerve_run, tmp_path):
    """--folds 1 (the shipped models' final runs): nothing is held out, so no per-epoch
    validation; two epochs so the curves are redrawn from a history with empty val columns."""
    data, _ = nerve_run
    out = tmp_path / "all"
    assert main(["--data", str(data), "--out", str(out), "--epochs", "2", "--folds", "1",
                 *TINY]) == 0
    rows = (out / "history.csv").read_text().splitlines()
    assert len(rows) == 3 and "val_dice" not in rows[0].split(",")
    assert (out / "curves.png").is_file() and (out / "model.keras").is_file()
    split = json.loads((out / "split.json").read_text())
    assert split["train_subjects"] == split["val_subjects"]  # every frame trains
