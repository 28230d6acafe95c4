"""edge-run as a real process: Ctrl-C and SIGTERM (how systemd stops a service) end a run with
the summary, the report and a playable recording, exit 130; a missing extra and a bad path are
one line and exit 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_loop import video_frames  # tests/edge is on sys.path (pytest's rootdir import)

REPO = Path(__file__).parents[2]
FIXTURE = REPO / "edge" / "models" / "nerve_fixture_int8.tflite"
STATUS_PREFIX = "edge-run: frame "  # the headless status line: frames are flowing
START_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 60.0


def edge_run(*args: str, pythonpath: tuple[Path, ...] = ()) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (*pythonpath, REPO))
    return subprocess.Popen([sys.executable, "-m", "edge.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_frames(proc: subprocess.Popen) -> list[str]:
    """stderr lines up to the first status line (which comes after 2 s of frames)."""
    lines, deadline = [], time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break  # the process ended before its first status line
        lines.append(line)
        if line.startswith(STATUS_PREFIX):
            return lines
    proc.kill()
    pytest.fail(f"edge-run never reported frames: {''.join(lines)}{proc.communicate()}")


@pytest.mark.parametrize("signum, reason", [(signal.SIGINT, "interrupted (Ctrl-C)"),
                                            (signal.SIGTERM, "terminated (SIGTERM)")])
def test_a_signal_ends_the_run_with_summary_report_and_playable_recording(
        tmp_path, signum, reason):
    record, report = tmp_path / "out.mp4", tmp_path / "run.json"
    proc = edge_run("--source", "phantom", "--headless", "--model", str(FIXTURE),
                    "--record", str(record), "--report", str(report))
    try:
        wait_for_frames(proc)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=EXIT_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == f"edge-run: {reason}"
    assert "Traceback" not in err and f"edge-run: stopped: {reason}" in out
    data = json.loads(report.read_text())
    assert data["stop_reason"] == reason and data["frames"] > 0
    # Finalized, so every frame plays (one more when the signal came between the write and
    # the frame's end).
    # --record out.mp4 is written as out.mkv (plays after a kill; edge.io.sinks)
    assert video_frames(record.with_suffix(".mkv")) in (data["frames"], data["frames"] + 1)
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def test_an_onnx_model_without_onnxruntime_names_the_install_command(tmp_path):
    stub = tmp_path / "stub" / "onnxruntime"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'onnxruntime'\", name='onnxruntime')\n")
    proc = edge_run("--model", str(REPO / "edge" / "models" / "nerve_fixture.onnx"),
                    "--headless", "--max-frames", "2", pythonpath=(tmp_path / "stub",))
    out, err = proc.communicate(timeout=EXIT_TIMEOUT_S)
    lines = err.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, err
    assert lines[0].startswith("edge-run: error: ") and "onnxruntime" in lines[0]
    assert "pip install -e '.[onnx]'" in lines[0]


def test_a_bad_path_is_one_line_and_exit_2(tmp_path):
    proc = edge_run("--video", str(tmp_path / "nope.mp4"), "--headless")
    out, err = proc.communicate(timeout=EXIT_TIMEOUT_S)
    lines = err.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, err
    assert lines[0] == f"edge-run: error: video file not found: {tmp_path / 'nope.mp4'}; " \
                       "check the path"
