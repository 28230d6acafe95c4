"""The one-command chain (edge-convert MODEL --out DIR) on the tiny run folder: every format
with its sidecar and the report, the gate, bad input, and the single-step subcommands."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from convert.chain import FORMATS
from convert.cli import main
from edge.model.metadata import load_meta, sha256_file

NAME = "tiny"  # the run folder's name names the files


@pytest.fixture(scope="module")
def converted(tiny_run, tmp_path_factory):
    parent = tmp_path_factory.mktemp("conv")
    rc = main([str(tiny_run), "--out", str(parent / "out"), "--prune", "0.5",
               "--prune-epochs", "1", "--latency-runs", "3"])
    return rc, parent / "out"


def _file(out, fmt):
    return out / f"{NAME}-{fmt}{FORMATS[fmt].suffix}"


def test_chain_writes_every_format_sidecar_and_report(converted):
    rc, out = converted
    assert rc == 0
    for fmt in FORMATS:
        assert _file(out, fmt).is_file() and _file(out, fmt).with_suffix(".json").is_file()
    assert [p.name for p in out.parent.iterdir()] == ["out"]  # no staging folder left
    report = json.loads((out / "conversion_report.json").read_text())
    assert report["gate"]["passed"] and report["gate"]["failures"] == []
    assert [v["variant"] for v in report["variants"]] == list(FORMATS)
    for v in report["variants"]:
        assert v["per_image_dice"] > 0.5 and v["gzip_bytes"] < v["bytes"] and v["latency_ms"] > 0
    assert abs(report["prune"]["pruned_sparsity"] - 0.5) <= 0.02
    assert {t["model"] for t in report["targets"]} == {
        _file(out, f).name for f in FORMATS if FORMATS[f].suffix == ".tflite"}
    md = (out / "conversion_report.md").read_text()
    assert "| int8 |" in md and "PASSED" in md and "edgetpu" in md


def test_sidecar_round_trips_into_edge_metadata(converted, pre):
    _, out = converted
    path = _file(out, "int8")
    meta = load_meta(path)
    assert meta.name == NAME and meta.input_hw == pre.input_hw
    assert meta.scale == pytest.approx(pre.scale) and meta.offset == pre.offset
    assert meta.threshold == 0.5 and meta.sha256 == sha256_file(path)
    extra = meta.extra
    assert extra["format"] == "int8" and extra["input_quant"]["zero_point"] == -128
    assert len(extra["source_model"]["sha256"]) == 64
    assert extra["source_model"]["run"] == NAME and "path" not in extra["source_model"]
    assert not os.path.isabs(extra["training_data"]["data_dir"])  # nothing of the build machine
    assert extra["training_data"]["val_subjects"] and extra["training_data"]["train_subjects"]
    assert not set(extra["training_data"]["val_subjects"]) & set(
        extra["training_data"]["train_subjects"])
    assert 0.0 < extra["validation"]["per_image_dice"] <= 1.0
    assert extra["sparsity"]["pruned_kernels"] == pytest.approx(0.5, abs=0.02)
    assert extra["converters"]["tensorflow"].startswith("2.")


def test_edge_run_runs_the_converted_model(converted, tiny_data, tmp_path):
    edge_cli = pytest.importorskip("edge.cli")
    _, out = converted
    masks = tmp_path / "masks"
    rc = edge_cli.main(["--images", str(tiny_data), "--model", str(_file(out, "int8")),
                        "--headless", "--max-frames", "3", "--save-masks", str(masks),
                        "--quiet"])
    assert rc == 0 and len(list(masks.glob("*.png"))) == 3


def test_step_subcommands_on_the_outputs(converted, tiny_run, tmp_path, capsys):
    _, out = converted
    assert main(["targets", str(_file(out, "int8")), "--json", str(tmp_path / "t.json")]) == 0
    assert "CONV_2D" in capsys.readouterr().out and (tmp_path / "t.json").is_file()
    assert main(["validate", str(tiny_run), str(_file(out, "int8")), str(_file(out, "onnx"))]) == 0
    assert "int8" in capsys.readouterr().out
    assert main(["onnx", str(tiny_run), "--out", str(tmp_path / "m.onnx")]) == 0
    assert "parity" in capsys.readouterr().out and (tmp_path / "m.onnx").is_file()
    assert main(["quantize", str(tiny_run), "--out", str(tmp_path / "q.tflite"),
                 "--calib-frames", "8"]) == 0
    assert "'zero_point': -128" in capsys.readouterr().out
    assert load_meta(tmp_path / "q.tflite").sha256 is None  # a bare step writes no sidecar


def test_gate_fails_on_bad_calibration_and_leaves_nothing(tiny_run, tmp_path, monkeypatch,
                                                          capsys):
    import convert.chain as chain

    real = chain.calibration_frames

    def near_black(*args, **kwargs):  # wrong calibration: activation ranges far too narrow
        return real(*args, **kwargs) * 0.05

    monkeypatch.setattr(chain, "calibration_frames", near_black)
    out = tmp_path / "out"
    rc = main([str(tiny_run), "--out", str(out), "--prune", "0", "--formats", "int8",
               "--latency-runs", "1"])
    assert rc == 1
    assert "gate failed" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no out, no staging folder


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    return err[-1]


def test_corrupt_model_file_is_one_clear_error(tmp_path, tiny_data, capsys):
    bad = tmp_path / "model.keras"
    bad.write_bytes(b"this is not a keras archive")
    rc = main([str(bad), "--data", str(tiny_data), "--out", str(tmp_path / "out")])
    assert rc == 2 and "model.keras" in _error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_non_keras_file_is_rejected(tmp_path, tiny_data, capsys):
    other = tmp_path / "model.onnx"
    other.write_bytes(b"\x08\x07")
    assert main([str(other), "--data", str(tiny_data), "--out", str(tmp_path / "o")]) == 2
    assert "not a Keras model" in _error_line(capsys)


def test_input_size_mismatch_names_both_sizes(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    cfg = json.loads((run / "config.json").read_text())
    cfg["input_hw"] = [64, 96]
    (run / "config.json").write_text(json.dumps(cfg))
    assert main([str(run), "--out", str(tmp_path / "out")]) == 2
    line = _error_line(capsys)
    assert "64x96" in line and "32x48" in line


def test_empty_calibration_set_is_rejected_before_work(tiny_run, tmp_path, capsys):
    assert main([str(tiny_run), "--out", str(tmp_path / "out"), "--calib-frames", "0"]) == 2
    assert "calibration" in _error_line(capsys) and not (tmp_path / "out").exists()


def test_unwritable_or_foreign_output_folder(tiny_run, tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert main([str(tiny_run), "--out", str(blocker / "sub"), "--prune", "0"]) == 2
    assert "afile" in _error_line(capsys)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep")
    assert main([str(tiny_run), "--out", str(foreign), "--prune", "0"]) == 2
    assert "not an edge-convert output" in _error_line(capsys)
    assert (foreign / "precious.txt").read_text() == "keep"
