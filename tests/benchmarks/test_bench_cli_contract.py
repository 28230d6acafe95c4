"""edge-bench's CLI contract (edge.clikit) in real subprocesses: SIGTERM stops a run with exit
130 and no result file, a missing optional package is one line (exit 2) or, for MAC counting,
a note (no crash), a bad path is one line and exit 2; and the latency-vs-Dice plot's labels
never overlap, even where several variants sit on one point."""

from __future__ import annotations

import itertools
import json

from benchmarks.cli import build_parser
from benchmarks.report import draw_latency_vs_dice, label_box
from tests.cli_contract import (
    EXIT_INTERRUPTED,
    assert_one_error,
    assert_options_documented,
    partial_files,
    run_tool,
    terminate_when,
)


def test_every_option_has_help_and_default():
    parser = build_parser()
    assert_options_documented(parser)
    subparsers = next(a for a in parser._actions if a.dest == "command")  # noqa: SLF001
    for sub in subparsers.choices.values():
        assert_options_documented(sub)


def test_sigterm_stops_with_130_and_no_result_file(tiny_models, tmp_path):
    out, log = tmp_path / "lat.json", tmp_path / "log.txt"
    args = ["latency", "--models", str(tiny_models["onnx"]), "--in-process", "--threads", "1",
            "--warmup", "0", "--runs", "100000000", "--repeats", "1", "--out", str(out)]
    rc, text = terminate_when("benchmarks.cli", args,
                              lambda: "latency: tiny.onnx [" in log.read_text(), log)
    assert rc == EXIT_INTERRUPTED, text[-3000:]
    assert "edge-bench: terminated (SIGTERM)" in text and "Traceback" not in text
    assert not out.exists() and partial_files(tmp_path) == []


def test_missing_tensorflow_for_a_keras_model_is_one_line(tiny_models, tiny_dataset):
    proc = run_tool("benchmarks.cli", ["accuracy", "--models", str(tiny_models["keras"]),
                                       "--data", str(tiny_dataset["data"])],
                    hide=["tensorflow"])
    assert_one_error(proc, "edge-bench", "tensorflow", "pip install -e '.[train]'")


def test_macs_without_the_onnx_package_says_how_to_count_them(tiny_models, tmp_path):
    out = tmp_path / "macs.json"
    proc = run_tool("benchmarks.cli", ["macs", "--models", str(tiny_models["onnx"]), "--out",
                                       str(out)], hide=["onnx"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "TypeError" not in proc.stderr
    assert "MACs not counted" in proc.stderr and "pip install -e '.[convert]'" in proc.stderr
    assert json.loads(out.read_text())["results"][0]["macs"] is None


def test_ceiling_on_a_device_install_names_the_convert_extra(tmp_path, monkeypatch):
    """No TensorFlow, no onnx and no cached ceiling models (a device install): exit 2 and one
    line with the install command, not a row of failures and exit 1."""
    monkeypatch.setenv("NERVE_EDGE_CACHE", str(tmp_path / "cache"))
    proc = run_tool("benchmarks.cli", ["ceiling", "--out", str(tmp_path / "c.json")],
                    hide=["tensorflow", "tf_keras", "onnx"])
    assert_one_error(proc, "edge-bench", "[convert]", "pip install", "make venv")
    assert not (tmp_path / "c.json").exists()
    assert "Traceback" not in proc.stderr


def test_bad_path_is_one_line(tmp_path):
    proc = run_tool("benchmarks.cli", ["latency", "--models", str(tmp_path / "nope.tflite")])
    assert_one_error(proc, "edge-bench", "nope.tflite")


def _variant(name, fmt, ms, dice):
    return {"variant": name, "format": fmt, "p50_ms": {"1": ms}, "per_image_dice": dice,
            "status": "ok"}


def test_plot_labels_do_not_overlap_for_coincident_points():
    """Four variants on one point (as int8 / int8-float-io / fp16 / fp32 of one model can be)
    plus near neighbours: every label stays readable."""
    same = [_variant(f"model-{v}", "tflite", 2.0, 0.70) for v in ("a", "b", "c", "d")]
    near = [_variant(f"near-{i}", "onnx", 2.0 + 0.05 * i, 0.70 - 0.003 * i) for i in range(4)]
    doc = {"config": {"threads": [1]}, "machine": {"cpu_model": "test cpu"},
           "variants": [*same, *near, _variant("far", "keras", 9.0, 0.4)]}
    fig = draw_latency_vs_dice(doc)
    renderer = fig.canvas.get_renderer()
    texts = fig.axes[0].texts
    shown = "\n".join(t.get_text() for t in texts)
    assert all(v["variant"] in shown for v in doc["variants"])  # every variant is named
    boxes = [label_box(t, renderer) for t in texts]
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)
