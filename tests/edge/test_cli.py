"""edge-run's contract with the user: --help examples, and every bad input from issue 2 exits 2
with one line, no traceback and nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.cli import main

BAD_NCHW = Path(__file__).parent / "fixtures" / "bad_input_nchw.onnx"


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
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def _outputs(tmp_path: Path) -> list[str]:
    return ["--record", str(tmp_path / "out.mp4"), "--save-masks", str(tmp_path / "masks"),
            "--report", str(tmp_path / "run.json")]


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (argv, text the one-line message must contain)."""
    (tmp / "empty").mkdir()
    (tmp / "model.tflite").write_text("this is not a model\n")
    (tmp / "a_file").write_text("x")
    return {
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
    }


BAD_NAMES = ["camera 9", "missing video", "missing folder", "empty folder", "missing model",
             "text as tflite", "nchw model", "roi outside", "bad smooth", "record folder missing",
             "masks under a file", "report folder missing"]


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
    from edge.sinks import gui_problem

    if gui_problem() is None:
        pytest.skip("this OpenCV build has GUI windows: the no-GUI message cannot appear")
    report = tmp_path / "run.json"
    code = main(["--max-frames", "2", "--quiet", "--report", str(report)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("edge-run: error: ") and "--headless" in err
    assert len(err.splitlines()) == 1 and not report.exists()
