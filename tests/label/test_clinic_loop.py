"""The first half of a clinic's loop, end to end, on public USGRA-seg frames it never saw:
a video (made here from the frames) -> edge-run --capture -> edge-train select -> label push ->
annotation through Label Studio's API from the truth masks -> label pull -> the pulled folder
trains with edge-train (one epoch, tiny: a check that it is a valid data folder)."""

from __future__ import annotations

import csv
import importlib.util
import re

import cv2
import numpy as np
import pytest

from tests.cli_contract import run_tool
from tests.conftest import require_data
from tests.label.annotate import annotate_project
from tests.label.helpers import dice, edge_train, read_ids
from train.datafiles import read_class_ids

FRAME_HW = (360, 480)  # the "scanner" picture: every USGRA frame resized to it
N_VIEWS, REPEAT = 8, 3  # 8 views, each held for 3 frames (cine-like near-duplicates)
TINY = ["--input-size", "32x48", "--base-filters", "4", "--depth", "2", "--batch", "4",
        "--max-steps-per-epoch", "2", "--val-fraction", "0.34", "--progress", "0",
        "--threads", "1"]


def make_video(path, usgra) -> list[np.ndarray]:
    """Writes the clip; returns the truth (class-id 0/1 mask) of every video frame."""
    h, w = FRAME_HW
    views = []
    for img in sorted((usgra / "images").glob("*.png"))[:N_VIEWS]:
        image = cv2.resize(cv2.imread(str(img), cv2.IMREAD_COLOR), (w, h),
                           interpolation=cv2.INTER_AREA)
        truth = cv2.resize((read_class_ids(usgra / "masks" / img.name) == 1).astype(np.uint8),
                           (w, h), interpolation=cv2.INTER_NEAREST)
        views.append((image, truth))
    rng = np.random.default_rng(0)
    for _ in range(2):  # the probe off the nerve: nothing to outline
        views.append((rng.integers(0, 40, (h, w, 3), dtype=np.uint8), np.zeros((h, w), np.uint8)))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    assert writer.isOpened()
    truths = []
    for image, truth in views:
        for _ in range(REPEAT):
            writer.write(image)
            truths.append(truth)
    writer.release()
    return truths


def test_capture_select_push_annotate_pull_train(labelstudio, tmp_path):
    usgra = require_data("usgra-seg")
    truths = make_video(tmp_path / "scan.avi", usgra)
    capture = tmp_path / "captured"
    proc = run_tool("edge.cli", ["--video", str(tmp_path / "scan.avi"), "--headless",
                                 "--capture", str(capture), "--capture-every", "0"])
    assert proc.returncode == 0, proc.stderr
    assert len(list(capture.glob("*.png"))) == len(truths)

    chosen = tmp_path / "chosen"
    proc = edge_train("select", "--frames", str(capture), "--n", "6", "--out", str(chosen))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(open(chosen / "selection.csv")))
    assert len(rows) == len(truths) and all(r["reason"] for r in rows)
    assert sum(r["status"] == "duplicate" for r in rows) >= len(truths) - 10
    picked = sorted(p.name for p in chosen.glob("*.png"))
    assert len(picked) == 6

    proc = edge_train("label", "push", "--frames", str(chosen), "--url", labelstudio.url,
                      "--token", labelstudio.token, "--project", "clinic")
    assert proc.returncode == 0, proc.stderr
    truth = {n: truths[int(re.search(r"_f(\d+)\.png$", n).group(1))] for n in picked}
    annotate_project(labelstudio.url, labelstudio.token, "clinic", truth, "polygon")
    pulled = tmp_path / "pulled"
    proc = edge_train("label", "pull", "--url", labelstudio.url, "--token", labelstudio.token,
                      "--project", "clinic", "--out", str(pulled))
    assert proc.returncode == 0, proc.stderr
    n_empty = sum(not m.any() for m in truth.values())
    assert f"6 annotated frames ({n_empty} with no nerve)" in proc.stdout, proc.stdout
    for name, mask in truth.items():
        ids = read_ids(pulled / "masks" / name)
        assert dice(ids, mask) >= 0.98 if mask.any() else not ids.any(), name

    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("the pulled folder is checked up to training: TensorFlow is not in this "
                    "venv (make test runs tests/label in .venv, which has it)")
    proc = edge_train("--data", str(pulled), "--layout", "folder", "--nerve-class", "1",
                      "--epochs", "1", "--out", str(tmp_path / "run"), *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "run" / "model.keras").is_file()
