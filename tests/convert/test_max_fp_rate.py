"""False positives on frames without a nerve: the one scorer counts them, the gate's table and
report show them, and --max-fp-rate (off by default) refuses an int8 model above it, naming
the measured rate, the frames and the way out."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from convert.cli import main
from convert.report import variants_markdown
from convert.validate import GateConfig, apply_gate, results_table

FAST = ["--formats", "int8", "--prune", "0", "--latency-runs", "2", "--min-dice", "0"]


def rows(fp_rate: float | None, n_empty: int = 40) -> dict:
    base = {"per_image_dice": 0.8, "pooled_dice": 0.8, "drift_mean": 0.004,
            "false_positive_rate": fp_rate, "n_empty_truth": n_empty if fp_rate is not None
            else 0}
    return {"keras-float": {**base, "role": "reference", "dice_drop": 0.0, "drift_mean": 0.0},
            "int8": {**base, "role": "export", "dice_drop": 0.0}}


def test_off_by_default_and_refuses_above_the_ceiling():
    assert GateConfig().max_fp_rate is None
    assert apply_gate(rows(0.95), GateConfig()).passed
    assert apply_gate(rows(0.25), GateConfig(max_fp_rate=0.25)).passed
    (line,) = apply_gate(rows(0.95), GateConfig(max_fp_rate=0.2)).failures
    assert line.startswith("int8: false-positive rate 0.9500 (38 of 40 held-out frames")
    assert "--max-fp-rate 0.2" in line and "--min-area" in line and "empty frames" in line


def test_no_empty_frame_is_no_measurement_not_a_refusal():
    assert apply_gate(rows(None), GateConfig(max_fp_rate=0.1)).passed


def test_a_class_row_is_gated_per_class():
    row = rows(None)
    row["int8"]["classes"] = {
        "nerve": {"false_positive_rate": 0.5, "n_absent": 10, "per_image_dice": 0.8,
                  "pooled_dice": 0.8, "dice_drop": 0.0},
        "vessel": {"false_positive_rate": 0.1, "n_absent": 10, "per_image_dice": 0.8,
                   "pooled_dice": 0.8, "dice_drop": 0.0}}
    (line,) = apply_gate(row, GateConfig(max_fp_rate=0.2)).failures
    assert line.startswith("int8: nerve false-positive rate 0.5000 (5 of 10")


def test_table_and_report_show_the_rate():
    table = results_table(rows(0.95))
    assert "fp rate" in table.splitlines()[0] and "0.9500" in table
    assert results_table(rows(None)).splitlines()[1].endswith("-")
    md = variants_markdown([{"variant": "int8", **rows(0.95)["int8"]}])
    assert "FP rate (empty frames)" in md and "0.9500 (38/40)" in md


@pytest.fixture(scope="module")
def half_empty_data(tiny_data, tiny_split, tmp_path_factory):
    """The tiny data with the masks of half the validation frames blanked: the frames still
    show the bright blob, so a model that learned it outlines a nerve that is 'not there'."""
    data = tmp_path_factory.mktemp("fp") / "kaggle"
    shutil.copytree(tiny_data, data)
    for s in tiny_split[1][::2]:
        mask = data / f"{s.stem}_mask.png"
        cv2.imwrite(str(mask), np.zeros(cv2.imread(str(mask), 0).shape, np.uint8))
    return data


def test_chain_reports_and_refuses_false_positives(tiny_run, half_empty_data, tmp_path,
                                                   capsys):
    out = tmp_path / "out"
    args = [str(tiny_run), "--data", str(half_empty_data), *FAST]
    assert main([*args, "--out", str(out), "--max-fp-rate", "0.1"]) == 1
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("edge-convert: error:")]
    assert "int8: false-positive rate" in line and "--max-fp-rate 0.1" in line
    assert not out.exists()
    assert main([*args, "--out", str(out)]) == 0  # off by default: reported only
    report = json.loads((out / "conversion_report.json").read_text())
    (int8,) = report["variants"]
    assert int8["n_empty_truth"] > 0 and int8["false_positive_rate"] > 0.1
    side = json.loads((out / "tiny-int8.json").read_text())
    assert side["extra"]["validation"]["false_positive_rate"] == int8["false_positive_rate"]
    assert "FP rate (empty frames)" in (out / "conversion_report.md").read_text()
