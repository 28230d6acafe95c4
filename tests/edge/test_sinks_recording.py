"""A real edge-run recording, stopped the hard way (SIGKILL = a power cut without the disk
loss), and the normal ways (SIGTERM, Ctrl-C): the recording must play back every time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from edge.io.sinks import CRASH_SAFE_CONTAINER

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "edge" / "models" / "nerve_fixture_int8.tflite"
KILL_AFTER_FRAMES = 150  # the status line must show this many frames before the signal
STARTUP_TIMEOUT_S = 120.0  # a loaded 2-core test machine can be slow to import and start
# What a cut may lose: Matroska's open cluster (<= 5 s or 5 MB of video, ~80 frames of these
# overlays) and the writer's buffers. "Up to the last seconds" at 30 FPS.
MAX_LOST_FRAMES = 160


def readable_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.isOpened() and cap.read()[0]:
        count += 1
    cap.release()
    return count


def record_then_signal(tmp_path: Path, sig: int) -> tuple[int, int, Path]:
    """Start edge-run --record out.mp4, wait for KILL_AFTER_FRAMES, send ``sig``; returns
    (frames reported before the signal, exit code, the folder)."""
    cmd = [sys.executable, "-m", "edge.cli", "--source", "phantom", "--headless", "--threads",
           "1", "--model", str(FIXTURE), "--record", str(tmp_path / "out.mp4")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path)
    seen, deadline = 0, time.monotonic() + STARTUP_TIMEOUT_S
    try:
        for line in proc.stderr:
            if line.startswith("edge-run: frame "):
                seen = int(line.split()[2].rstrip(","))
                if seen >= KILL_AFTER_FRAMES:
                    break
            if time.monotonic() > deadline:
                break
        proc.send_signal(sig)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert seen >= KILL_AFTER_FRAMES, f"edge-run never reached {KILL_AFTER_FRAMES} frames"
    return seen, code, tmp_path


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT],
                         ids=["SIGKILL", "SIGTERM", "SIGINT"])
def test_a_recording_plays_after_the_process_is_stopped(tmp_path: Path, sig: int) -> None:
    seen, code, folder = record_then_signal(tmp_path, sig)
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
    videos = sorted(p for p in folder.iterdir() if p.stem == "out")
    assert [p.suffix for p in videos] == [CRASH_SAFE_CONTAINER[".mp4"]], videos
    frames = readable_frames(videos[0])
    assert frames >= seen - MAX_LOST_FRAMES, (frames, seen)
    ok, image = cv2.VideoCapture(str(videos[0])).read()
    assert ok and image.shape == (420, 580, 3)
