"""The edge-convert gate's absolute floor (--min-dice): an int8 model under it is refused
(exit 1, nothing written) even with no drop against its float model, unless
--allow-low-dice, which writes it with a warning recorded in the report and the sidecars."""

from __future__ import annotations

import json

import pytest

from convert.cli import main
from convert.validate import DEFAULT_MIN_DICE, GateConfig, apply_gate

FAST = ["--formats", "int8", "--prune", "0", "--latency-runs", "2"]


def rows(dice: float, drop: float = 0.0) -> dict:
    ref = {"role": "reference", "per_image_dice": dice + drop, "dice_drop": 0.0,
           "drift_mean": 0.0}
    int8 = {"role": "export", "per_image_dice": dice, "dice_drop": drop, "drift_mean": 0.004,
            "n_images": 412}
    return {"keras-float": ref, "int8": int8}


def test_a_one_epoch_model_with_no_drop_is_refused_by_the_floor():
    """Dice 0.056 (a 1-epoch fine-tune) converts without any drop: the relative rule passes
    it, the floor does not."""
    result = apply_gate(rows(0.056), GateConfig())
    assert not result.passed and len(result.failures) == 1
    line = result.failures[0]
    assert "per-image Dice 0.0560 on 412 held-out frames" in line
    assert f"--min-dice {DEFAULT_MIN_DICE:g}" in line and "--allow-low-dice" in line
    assert DEFAULT_MIN_DICE == 0.5


def test_the_floor_keeps_the_relative_rule_and_can_be_allowed_or_off():
    assert apply_gate(rows(0.78), GateConfig()).passed
    both = apply_gate(rows(0.2, drop=0.05), GateConfig())
    assert len(both.failures) == 2 and "--max-dice-drop" in both.failures[0]
    allowed = apply_gate(rows(0.2), GateConfig(allow_low_dice=True))
    assert allowed.passed and "written anyway" in allowed.warnings[0]
    assert apply_gate(rows(0.2), GateConfig(min_dice=0.0)).passed
    assert apply_gate(rows(0.49), GateConfig(min_dice=0.4)).warnings == []


def test_chain_refuses_below_the_floor_and_writes_nothing(tiny_run, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main([str(tiny_run), "--out", str(out), "--min-dice", "0.99", *FAST])
    assert rc == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("edge-convert: error:")]
    assert "gate failed, nothing written" in line and "is below the floor --min-dice 0.99" in line
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_allow_low_dice_writes_and_records_it(tiny_run, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main([str(tiny_run), "--out", str(out), "--min-dice", "0.99", "--allow-low-dice",
               *FAST])
    assert rc == 0
    assert "edge-convert: warning: int8: per-image Dice" in capsys.readouterr().err
    report = json.loads((out / "conversion_report.json").read_text())
    assert report["gate"]["below_min_dice"] and report["gate"]["low_dice_allowed"]
    assert report["gate"]["min_dice"] == pytest.approx(0.99)
    side = json.loads((out / "tiny-int8.json").read_text())
    assert side["extra"]["gate"]["below_min_dice"] is True
    assert "written anyway" in side["extra"]["gate"]["warnings"][0]
    assert "below the Dice floor" in (out / "conversion_report.md").read_text()


def test_every_refusal_names_the_way_out():
    """The drop and drift lines name the flag that accepts the measured value (above it) and
    what may shrink it; a pruned model's refusal says to convert it unpruned first."""
    from convert.chain import DEFAULT_PRUNE, ChainConfig, _pruning_way_out

    result = apply_gate(rows(0.78, drop=0.0412), GateConfig())
    (line,) = result.failures
    assert "--calib-frames" in line and "--max-dice-drop 0.045 accepts it" in line
    assert DEFAULT_PRUNE == 0  # pruning only when asked: it buys no speed here
    assert "--prune 0" in _pruning_way_out(result, ChainConfig(prune=0.5))
    assert _pruning_way_out(result, ChainConfig(prune=0.0)) == ""


def test_edge_deploy_refuses_below_the_same_floor():
    from edge.model.store import SHIP_FLOOR

    assert SHIP_FLOOR == DEFAULT_MIN_DICE
