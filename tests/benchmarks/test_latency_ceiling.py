"""latency and ceiling: run on tiny models and write well-formed results (no timing asserts)."""

from __future__ import annotations

import sys

import pytest

from benchmarks import ceiling as ceil
from benchmarks.ceiling_models import SHAPE_SOURCE, ConvShape, model_conv_shapes
from benchmarks.latency import LatencyConfig, run_latency, summarize_times
from benchmarks.macs import count_model_macs
from edge.deps import MissingExtra
from edge.model.metadata import sha256_file

SHIPPED_INT8 = SHAPE_SOURCE  # the default model whose layer shapes the model ceiling uses

QUICK = {"threads": (1,), "warmup": 1, "runs": 3, "repeats": 2}
LATENCY_KEYS = ("init_ms", "first_ms", "min_ms", "mean_ms", "std_ms", "p50_ms", "p90_ms",
                "p99_ms", "fps", "gmacs_per_s", "peak_rss_mb", "size_bytes", "sha256", "macs",
                "backend_name", "threads", "dtype", "repeat_p50_ms")


def test_summarize_times_known_values():
    s = summarize_times([4.0, 1.0, 3.0, 2.0])
    assert (s["min_ms"], s["mean_ms"], s["p50_ms"]) == (1.0, 2.5, 2.5)
    assert s["p90_ms"] == pytest.approx(3.7)


def test_latency_in_process_rows(tiny_models, tiny_macs, broken_model):
    paths = [tiny_models["tflite_int8"], tiny_models["onnx"], broken_model]
    doc = run_latency(paths, LatencyConfig(subprocess=False, **QUICK), progress=lambda s: None)
    assert doc["kind"] == "latency" and "cpu_model" in doc["machine"]
    ok, onnx_row, bad = doc["results"]
    for row in (ok, onnx_row):
        assert row["status"] == "ok", row.get("error")
        assert set(LATENCY_KEYS) <= set(row)
        assert row["macs"] == tiny_macs
        assert row["min_ms"] <= row["p50_ms"] <= row["p99_ms"]
        assert len(row["repeat_p50_ms"]) == QUICK["repeats"]
    assert ok["sha256"] == sha256_file(tiny_models["tflite_int8"])
    assert ok["dtype"] == "int8" and ok["backend"] == "tflite"
    assert onnx_row["backend"] == "onnx"
    assert bad["status"] == "failed" and "broken.tflite" in bad["error"]


def test_latency_subprocess_reports_child_rss(tiny_models):
    doc = run_latency([tiny_models["tflite_fp32"]], LatencyConfig(**QUICK),
                      progress=lambda s: None)
    (row,) = doc["results"]
    assert row["status"] == "ok", row.get("error")
    assert row["peak_rss_mb"] > 0
    assert row["dtype"] == "float32"


def test_latency_keras_backend(tiny_models):
    doc = run_latency([tiny_models["keras"]], LatencyConfig(subprocess=False, **QUICK),
                      progress=lambda s: None)
    (row,) = doc["results"]
    assert row["status"] == "ok", row.get("error")
    assert row["backend"] == "keras" and row["backend_name"].startswith("keras")


def test_ceiling_measures_and_caches(tmp_path):
    pytest.importorskip("tensorflow")
    cfg = ceil.CeilingConfig(threads=(1,), warmup=1, runs=2, repeats=1, cache_dir=str(tmp_path))
    doc = ceil.run_ceiling(cfg, progress=lambda s: None)
    rows = {(r["shape"], r["backend"], r["dtype"]): r for r in doc["results"]}
    assert set(rows) == {(s, b, p) for s in ("model", "wide") for b in ceil.BACKENDS
                         for p in ceil.PRECISIONS}
    model_macs = count_model_macs(SHIPPED_INT8)  # every MAC of the default model is a conv's
    for (shape, _, _), row in rows.items():
        assert row["status"] == "ok", row.get("error")
        assert row["macs"] == (ceil.CEIL_MACS if shape == "wide" else model_macs)
        assert row["gmacs_per_s"] > 0
    assert ceil.CEIL_MACS == 128 * 128 * 64 * 64 * 9
    assert doc["shapes"]["model"]["macs"] == model_macs
    assert "3x3 12->12 at 64x88" in doc["shapes"]["model"]["convs"]  # thin, as in the model
    assert len(list((tmp_path / "ceiling").glob("*.tflite"))) == 4
    again = ceil.run_ceiling(cfg, progress=lambda s: None)  # from the cache, same models
    assert [r["model"] for r in again["results"]] == [r["model"] for r in doc["results"]]


def test_model_shapes_are_the_default_models_convolutions():
    convs = model_conv_shapes()
    assert len(convs) == 15 and max(c.cout for c in convs) <= 96  # thin: 1-96 channels
    assert convs[0] == ConvShape(128, 176, 1, 12, 3, 2)  # the strided stem
    assert sum(c.macs for c in convs) == count_model_macs(SHIPPED_INT8)


def test_ceiling_without_tensorflow_or_cache_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow -> ImportError
    cfg = ceil.CeilingConfig(backends=("tflite",), cache_dir=str(tmp_path))
    for shape_set in ("wide", "model"):
        with pytest.raises(ceil.CeilingUnavailable, match="TensorFlow is not installed.*convert"):
            ceil.MAKERS["tflite"](shape_set, "int8", cfg.cache_dir)
    doc = ceil.run_ceiling(cfg, progress=lambda s: None)
    assert all(r["status"] == "failed" for r in doc["results"])
    with pytest.raises(MissingExtra, match=r"\[convert\].*make venv"):
        ceil.check_makeable(cfg)


def test_attach_fractions_uses_the_model_shaped_ceiling_and_keeps_the_wide_one():
    def ceiling(shape, dtype, gmacs):
        return {"shape": shape, "backend": "tflite", "dtype": dtype, "threads": 1,
                "gmacs_per_s": gmacs, "status": "ok"}

    ceiling_doc = {"results": [ceiling("model", "int8", 50.0), ceiling("wide", "int8", 100.0),
                               ceiling("model", "float32", 20.0),
                               ceiling("wide", "float32", 40.0)]}
    rows = [{"backend": "tflite", "dtype": "int8", "threads": 1, "gmacs_per_s": 10.0},
            {"backend": "tflite", "dtype": "float16", "threads": 1, "gmacs_per_s": 10.0},
            {"backend": "tflite", "dtype": "int8", "threads": 2, "gmacs_per_s": 10.0}]
    ceil.attach_fractions(rows, ceiling_doc)
    assert rows[0]["fraction_of_ceiling"] == pytest.approx(0.2)
    assert rows[0]["fraction_of_wide_ceiling"] == pytest.approx(0.1)
    assert rows[1]["fraction_of_ceiling"] == pytest.approx(0.5)  # fp16 runs as float
    assert rows[1]["fraction_of_wide_ceiling"] == pytest.approx(0.25)
    assert "fraction_of_ceiling" not in rows[2]  # no 2-thread ceiling measured


def test_attach_fractions_reads_older_ceiling_documents_as_wide():
    old = {"results": [{"backend": "tflite", "dtype": "int8", "threads": 1,
                        "gmacs_per_s": 100.0, "status": "ok"}]}
    rows = [{"backend": "tflite", "dtype": "int8", "threads": 1, "gmacs_per_s": 10.0}]
    ceil.attach_fractions(rows, old)
    assert rows[0]["fraction_of_wide_ceiling"] == pytest.approx(0.1)
    assert "fraction_of_ceiling" not in rows[0]  # no model-shaped ceiling in it


def test_latency_without_onnx_package_still_times(tiny_models, monkeypatch):
    """On a device without the onnx package the MACs are unknown, the timing is not."""
    monkeypatch.setitem(sys.modules, "onnx", None)
    doc = run_latency([tiny_models["onnx"]], LatencyConfig(subprocess=False, **QUICK),
                      progress=lambda s: None)
    (row,) = doc["results"]
    assert row["status"] == "ok", row.get("error")
    assert row["macs"] is None and "pip install -e '.[convert]'" in row["macs_note"]
    assert "gmacs_per_s" not in row and row["fps"] > 0
