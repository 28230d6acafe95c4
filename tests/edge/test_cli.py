"""edge-run's contract with the user: --help examples, and every bad input from issue 2 exits 2
with one line, no traceback and nothing half-written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
BAD_NCHW = FIXTURES / "bad_input_nchw.onnx"
NO_MASK = FIXTURES / "no_mask_output.onnx"
REPO = Path(__file__).parents[2]
MODEL = REPO / "edge" / "models" / "nerve_fixture_int8.tflite"
# Broken sidecars next to a good model: (file text, what the one-line error must name).
BAD_SIDECARS = {
    "truncated sidecar": ('{"name": "nerve", "threshold": 0.', "not valid JSON"),
    "empty sidecar": ("", "is empty"),
    "list sidecar": ("[1, 2, 3]", "expected a JSON object"),
    "text threshold": ('{"threshold": "abc"}', "field 'threshold' is \"abc\""),
    "threshold out of range": ('{"threshold": 1.5}', "field 'threshold' is 1.5"),
    "negative min_area": ('{"min_area": -4}', "field 'min_area' is -4"),
    "zero scale": ('{"scale": 0}', "field 'scale' is 0"),
    "bad input_hw": ('{"input_hw": [128]}', "field 'input_hw'"),
    "bad sha256": ('{"sha256": "abc"}', "field 'sha256'"),
}


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "edge-run --camera 0" in text and "--save-masks" in text


@pytest.mark.parametrize("argv", [
    ["--camera", "0", "--video", "x.mp4"],  # mutually exclusive
    ["--roi", "1,2,3"],
    ["--threads", "two"],
    ["--backend", "caffe"],
])
def test_usage_errors_exit_2_in_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # not argparse's usage block before it
    assert err[0].startswith("edge-run: error: ") and err[0].endswith("(see edge-run --help)")


# The five tools' entry points (pyproject's [project.scripts]) and a subcommand's parser.
TOOL_ERRORS = [
    ("edge.cli", ["--threads", "two"], "edge-run"),
    ("train.cli", ["--epochs", "x"], "edge-train"),
    ("train.cli", ["eval", "--model", "m.keras"], "edge-train eval"),
    ("convert.cli", ["--no-such-flag"], "edge-convert"),
    ("benchmarks.cli", ["latency", "--no-such-flag"], "edge-bench latency"),
    ("edge.deploy_cli", ["install"], "edge-deploy install"),
]


@pytest.mark.parametrize("module, argv, prog", TOOL_ERRORS)
def test_every_tool_has_one_line_usage_errors(module, argv, prog):
    """No TensorFlow needed: the parsers fail before any heavy import."""
    code = (f"import sys; from {module} import main; sys.exit(main({argv!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(err) == 1, out.stderr
    assert err[0].startswith(f"{prog}: error: ") and err[0].endswith(f"(see {prog} --help)")


def _outputs(tmp_path: Path) -> list[str]:
    return ["--record", str(tmp_path / "out.mp4"), "--save-masks", str(tmp_path / "masks"),
            "--report", str(tmp_path / "run.json")]


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (argv, text the one-line message must contain)."""
    (tmp / "empty").mkdir()
    (tmp / "model.tflite").write_text("this is not a model\n")
    (tmp / "a_file").write_text("x")
    sidecars = {}
    for name, (text, expected) in BAD_SIDECARS.items():
        folder = tmp / name.replace(" ", "_")
        folder.mkdir()
        shutil.copy(MODEL, folder / MODEL.name)
        (folder / MODEL.with_suffix(".json").name).write_text(text)
        sidecars[name] = (["--model", str(folder / MODEL.name)], expected)
    return {
        **sidecars,
        "camera 9": (["--camera", "9"], "camera 9"),
        "missing video": (["--video", str(tmp / "nope.mp4")], "nope.mp4"),
        "missing folder": (["--images", str(tmp / "nope")], "nope"),
        "empty folder": (["--images", str(tmp / "empty")], "empty"),
        "missing model": (["--model", str(tmp / "nope.tflite")], "nope.tflite"),
        "text as tflite": (["--model", str(tmp / "model.tflite")], "not a valid TFLite model"),
        "nchw model": (["--model", str(BAD_NCHW)], "got input 1x3x128x176 (NCHW?)"),
        "roi outside": (["--roi", "500,400,200,100"], "does not fit inside the 580x420 frame"),
        "bad smooth": (["--smooth", "1.5"], "--smooth 1.5"),
        "record folder missing": (["--record", str(tmp / "no" / "o.mp4")], "o.mp4"),
        "masks under a file": (["--save-masks", str(tmp / "a_file" / "m")], "--save-masks"),
        "report folder missing": (["--report", str(tmp / "no" / "r.json")], "does not exist"),
        "report in /proc": (["--report", "/proc/x.json"],
                            "--report /proc/x.json: folder /proc is not writable"),
        "no mask output": (["--model", str(NO_MASK)], "has no 1xHxWx1 mask output (outputs: 1x10)"),
        "images is a file": (["--images", str(tmp / "a_file")], "is not an image folder"),
    }


BAD_NAMES = ["camera 9", "missing video", "missing folder", "empty folder", "missing model",
             "text as tflite", "nchw model", "roi outside", "bad smooth", "record folder missing",
             "masks under a file", "report folder missing", "report in /proc", "no mask output",
             "images is a file", *BAD_SIDECARS]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_input_exits_2_with_one_line(name, tmp_path, capsys):
    work = tmp_path / "work"
    work.mkdir()
    argv, expected = _bad_inputs(work)[name]
    outs = tmp_path / "outs"
    outs.mkdir()
    # Valid outputs alongside the bad input: none of them may be created.
    extra = [] if name.startswith(("record", "masks", "report")) else _outputs(outs)
    before = sorted(p.name for p in work.rglob("*"))
    code = main([*argv, "--headless", "--max-frames", "2", "--retry-s", "0", "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge-run: error: "), err
    assert expected in lines[0]
    assert "Traceback" not in err
    assert not list(outs.iterdir())
    assert sorted(p.name for p in work.rglob("*")) == before


def test_window_without_gui_points_to_headless(tmp_path, capsys):
    from edge.io.sinks import gui_problem

    if gui_problem() is None:
        pytest.skip("this OpenCV build has GUI windows: the no-GUI message cannot appear")
    report = tmp_path / "run.json"
    code = main(["--max-frames", "2", "--quiet", "--report", str(report)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("edge-run: error: ") and "--headless" in err
    assert len(err.splitlines()) == 1 and not report.exists()


@pytest.fixture
def no_gui(monkeypatch):
    """A stand-in for opencv-python-headless: its build information says GUI NONE."""
    import cv2

    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  GUI:                NONE\n")


@pytest.mark.parametrize("outputs", [
    ["--save-masks", "masks"],
    ["--record", "out.mkv"],
    ["--serve", "127.0.0.1:0"],
    ["--serve", "0", "--record", "out.mkv"],
], ids=["save-masks", "record", "serve", "serve+record"])
def test_no_gui_with_an_output_runs_without_a_window(tmp_path, monkeypatch, no_gui, capsys,
                                                     outputs):
    # issue 24: `--serve 8080` (or --record, --save-masks) on a headless OpenCV build must not
    # demand --headless: the output needs no window.
    monkeypatch.chdir(tmp_path)
    code = main(["--max-frames", "3", "--report", "run.json", *outputs])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "no GUI windows" in out and "running without a window" in out
    assert "error" not in err
    assert (tmp_path / "run.json").exists()
    if "--save-masks" in outputs:
        assert len(list((tmp_path / "masks").iterdir())) == 3
    if "--record" in outputs:
        assert (tmp_path / "out.mkv").stat().st_size > 0


def test_no_gui_and_no_output_still_exits_2(tmp_path, no_gui, capsys):
    report = tmp_path / "run.json"  # a report is no output to watch: a window is still needed
    code = main(["--max-frames", "2", "--report", str(report)])
    out, err = capsys.readouterr()
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "no GUI windows" in lines[0] and "--serve" in lines[0]
    assert not report.exists()


def test_a_gui_build_keeps_its_window(monkeypatch):
    from edge import outputs
    from edge.io import sinks
    from edge.runconfig import RunConfig

    monkeypatch.setattr(sinks, "gui_problem", lambda: None)
    cfg = RunConfig(serve="0", record="x.mkv")
    assert outputs.without_window_if_no_gui(cfg) is cfg


def test_an_unreadable_image_folder_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    # Tests run as root (chmod 000 would not stop us): fail the listing the way a folder
    # without read permission does.
    scans = tmp_path / "scans"
    scans.mkdir()

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", refuse)
    code = main(["--images", str(scans), "--headless", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"edge-run: error: cannot list image folder {scans}")


def test_every_option_has_help_with_its_default():
    from edge.cli import build_parser

    for action in build_parser()._actions:
        if not action.option_strings or action.dest == "help":
            continue
        assert action.help, action.option_strings
        mentions_default = "default" in action.help
        in_exclusive_source = action.dest in ("camera", "video", "images", "picamera", "dicom")
        assert mentions_default or in_exclusive_source, action.option_strings
