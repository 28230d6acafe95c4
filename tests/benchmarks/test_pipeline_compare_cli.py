"""pipeline, compare and the edge-bench CLI on tiny models: well-formed outputs, failed
variants listed (never dropped), exit codes."""

from __future__ import annotations

import json

import pytest

from benchmarks.cli import main
from benchmarks.compare import CompareConfig, run_compare, variant_names, write_compare
from benchmarks.pipeline import PipelineConfig, run_pipeline

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
QUICK_FLAGS = ["--threads", "1", "--warmup", "1", "--runs", "3", "--repeats", "1"]


def quiet(_line: str) -> None:
    pass


def test_pipeline_on_phantom(tiny_models):
    cfg = PipelineConfig(source="phantom", max_frames=8)
    doc = run_pipeline([tiny_models["tflite_int8"]], cfg, progress=quiet)
    (row,) = doc["results"]
    assert row["status"] == "ok", row.get("error")
    assert row["frames"] == 8
    assert {"capture", "inference", "total"} <= set(row["stages"])
    assert 0.0 <= row["non_model_share"] <= 1.0
    assert row["stages"]["inference"]["p50_ms"] > 0


def test_variant_names_are_unique():
    assert variant_names(["a/model.keras", "a/model.onnx", "c/x.onnx"]) == [
        "model.keras", "model.onnx", "x"]
    assert variant_names(["a/model.keras", "b/model.keras"]) == ["a/model.keras",
                                                                "b/model.keras"]
    assert variant_names(["m.onnx", "m.onnx"]) == ["m.onnx#0", "m.onnx#1"]


def test_compare_writes_json_markdown_png(tmp_path, tiny_models, tiny_dataset, broken_model):
    from benchmarks.accuracy import AccuracyConfig

    models = [tiny_models["keras"], tiny_models["tflite_int8"], tiny_models["onnx"],
              broken_model]
    cfg = CompareConfig(threads=(1,), warmup=1, runs=3, repeats=1, subprocess=False,
                        ceiling=False,
                        accuracy=AccuracyConfig(data_dir=str(tiny_dataset["data"]),
                                                split=str(tiny_dataset["split"])),
                        pipeline=PipelineConfig(max_frames=4))
    doc = run_compare(models, cfg, progress=quiet)
    paths = write_compare(doc, tmp_path / "out" / "results.json")

    saved = json.loads(paths["json"].read_text())
    variants = {v["variant"]: v for v in saved["variants"]}
    assert list(variants) == ["tiny.keras", "tiny_int8", "tiny.onnx", "broken"]
    assert variants["broken"]["status"] == "failed" and variants["broken"]["error"]
    for name in ("tiny.keras", "tiny_int8", "tiny.onnx"):
        v = variants[name]
        assert v["status"] == "ok", v.get("error")
        assert v["p50_ms"]["1"] > 0 and 0 <= v["per_image_dice"] <= 1
    for name in ("tiny_int8", "tiny.onnx"):  # the device loop runs device formats only
        assert variants[name]["pipeline_fps"] > 0
    assert "pipeline_fps" not in variants["tiny.keras"]
    assert variants["tiny_int8"]["dtype"] == "int8"
    assert saved["machine"]["cpu_model"] and saved["latency"]["results"][0]["sha256"]

    table = paths["markdown"].read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(models)  # header + one row per variant, failed included
    assert "FAILED" in rows[-1] and "broken" in rows[-1]
    assert rows[0].count("|") == rows[1].count("|")
    assert paths["plot"].read_bytes()[:8] == PNG_MAGIC


def test_cli_compare_and_exit_codes(tmp_path, tiny_models, broken_model, capsys):
    out = tmp_path / "cmp.json"
    rc = main(["compare", "--models", str(tiny_models["onnx"]), str(broken_model),
               "--no-ceiling", "--in-process", *QUICK_FLAGS, "--out", str(out)])
    assert rc == 0
    assert out.is_file() and out.with_suffix(".md").is_file()
    assert out.with_suffix(".png").read_bytes()[:8] == PNG_MAGIC
    assert [v["status"] for v in json.loads(out.read_text())["variants"]] == ["ok", "failed"]

    rc = main(["latency", "--models", str(broken_model), "--in-process", *QUICK_FLAGS,
               "--out", str(tmp_path / "lat.json")])
    assert rc == 1  # every model failed: a runtime failure
    assert (tmp_path / "lat.json").is_file()  # ... still written, with the error

    rc = main(["accuracy", "--models", str(tiny_models["onnx"]), "--data",
               str(tmp_path / "missing"), "--out", str(tmp_path / "acc.json")])
    assert rc == 2  # missing data: a user error, one line
    err = capsys.readouterr().err
    assert "missing" in err and "Traceback" not in err

    rc = main(["compare", "--models", str(tiny_models["onnx"]), "--pipeline", "--source",
               str(tmp_path / "no_such_video.mp4"), "--no-ceiling", "--in-process",
               *QUICK_FLAGS])
    assert rc == 2  # a bad --source is found before any measurement
    assert "no_such_video.mp4" in capsys.readouterr().err


def test_cli_macs_and_pipeline(tmp_path, tiny_models, tiny_macs):
    out = tmp_path / "macs.json"
    assert main(["macs", "--models", str(tiny_models["tflite_int8"]), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["results"][0]["macs"] == tiny_macs
    out = tmp_path / "pipe.json"
    assert main(["pipeline", "--models", str(tiny_models["onnx"]), "--max-frames", "3",
                 "--out", str(out)]) == 0
    assert json.loads(out.read_text())["results"][0]["frames"] == 3


def test_cli_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "edge-bench compare" in capsys.readouterr().out
