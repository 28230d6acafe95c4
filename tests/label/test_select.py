"""edge-train select: near-duplicates dropped, unsure frames first, a share of "no nerve"
frames kept, one CSV row per frame with the reason; no TensorFlow on the way."""

from __future__ import annotations

import csv
import subprocess
import sys

import cv2
import numpy as np

from tests.cli_contract import REPO, assert_one_error
from tests.label.helpers import edge_train, synthetic
from train.label.predict import Prediction
from train.label.select import pick


def _pred(margin, flip, empty):
    mask = np.zeros((4, 4), np.uint8) if empty else np.ones((4, 4), np.uint8)
    return Prediction(mask, margin, flip)


def test_pick_keeps_a_share_of_empty_frames_most_unsure_first():
    preds = {0: _pred(0.4, 0.0, False), 1: _pred(0.1, 0.0, False), 2: _pred(0.2, 0.5, False),
             3: _pred(0.45, 0.0, True), 4: _pred(0.05, 0.0, True), 5: _pred(0.3, 0.0, False)}
    assert pick(preds, 4, 0.25) == [4, 2, 1, 5]
    assert pick(preds, 4, 0.5) == [4, 3, 2, 1]
    assert sorted(pick(preds, 10, 0.0)) == [0, 1, 2, 3, 4, 5]  # short pools: everything


def test_select_drops_duplicates_and_says_why(tmp_path):
    frames = tmp_path / "frames"
    synthetic(frames, n=4, empty=2)
    rng = np.random.default_rng(0)
    for k in range(3):  # near-copies of frame_01: a held probe
        image = cv2.imread(str(frames / "frame_01.png"), cv2.IMREAD_UNCHANGED)
        noisy = np.clip(image.astype(int) + rng.integers(-2, 3, image.shape), 0, 255)
        cv2.imwrite(str(frames / f"frame_01_{k}.png"), noisy.astype(np.uint8))
    out = tmp_path / "chosen"
    proc = edge_train("select", "--frames", str(frames), "--n", "4", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "9 frames, 3 near-duplicates dropped" in proc.stdout, proc.stdout
    rows = {r["frame"]: r for r in csv.DictReader(open(out / "selection.csv"))}
    assert len(rows) == 9 and all(r["reason"] for r in rows.values())
    assert {rows[f"frame_01_{k}.png"]["status"] for k in range(3)} == {"duplicate"}
    selected = [n for n, r in rows.items() if r["status"] == "selected"]
    assert sorted(p.name for p in out.glob("*.png")) == sorted(selected) and len(selected) == 4


def test_select_refuses_an_existing_folder_and_a_missing_one(tmp_path):
    synthetic(tmp_path / "frames", n=1, empty=0)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    proc = edge_train("select", "--frames", str(tmp_path / "frames"), "--out",
                      str(tmp_path / "out"))
    assert_one_error(proc, "edge-train", str(tmp_path / "out"))
    proc = edge_train("select", "--frames", str(tmp_path / "nope"), "--out",
                      str(tmp_path / "o2"))
    assert_one_error(proc, "edge-train", str(tmp_path / "nope"))


def test_label_commands_import_no_tensorflow():
    code = ("import sys, train.cli, train.label.cli, train.label.select, train.label.coco, "
            "train.label.labelstudio; assert 'tensorflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_every_option_says_its_default():
    from tests.cli_contract import assert_options_documented
    from train.label.cli import label_parser, select_parser

    assert_options_documented(select_parser())
    for action in label_parser()._actions:  # noqa: SLF001  the subcommands' parsers
        for sub in getattr(action, "choices", None) or {}:
            if isinstance(action.choices, dict):
                assert_options_documented(action.choices[sub])
