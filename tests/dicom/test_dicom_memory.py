"""edge-run on a DICOM cine with --loop keeps no per-frame state: 20,000 frames of a cine
whose ultrasound region gives the pixel size (areas in mm2 in the report and the status
JSON), with --serve polled, and no Python allocation line grows with the frame count (see
tests/memory_support.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from dicomfiles import make_us

from edge.io.phantom import phantom_pair
from tests.memory_support import FRAMES, run_tracked

FIXTURE_MODEL = str(Path(__file__).resolve().parents[2] / "edge/models/nerve_fixture_int8.tflite")
CINE_FRAMES = 10  # looped 2,000 times
HW = (128, 176)  # small frames: the run is about the loop's bookkeeping
DELTA_CM = (0.01, 0.02)  # -> 0.1 mm x 0.2 mm = 0.02 mm2 per pixel
PIXEL_MM2 = 0.02


@pytest.mark.slow  # ~40 s of CPU
def test_a_looped_cine_with_a_pixel_size_keeps_no_per_frame_state(tmp_path, monkeypatch):
    frames = np.stack([phantom_pair(i, *HW[::-1])[0] for i in range(CINE_FRAMES)])
    # No frame time: with --serve a cine with one plays at its own rate (30 FPS here).
    cine = make_us(tmp_path / "cine.dcm", frames,
                   regions=[(0, 0, HW[1] - 1, HW[0] - 1, DELTA_CM)])
    report = tmp_path / "run.json"
    run = run_tracked(["--dicom", str(cine), "--loop", "--model", FIXTURE_MODEL,
                       "--threads", "1", "--report", str(report)], monkeypatch)
    assert run.code == 0
    assert run.bounded(), run.failure()
    doc = json.loads(report.read_text())
    area = doc["nerve_area"]
    assert area["unit"] == "mm2" and area["frames"] == FRAMES
    assert area["frames_with_nerve"] > 0 and 0 < area["mean"] <= area["max"]
    assert run.poller.last_status["area_mm2"] is not None


def test_soak_of_a_dicom_cine_reports_mm2(tmp_path):
    from benchmarks.cli import main as bench

    frames = np.stack([phantom_pair(i, *HW[::-1])[0] for i in range(CINE_FRAMES)])
    cine = make_us(tmp_path / "cine.dcm", frames,
                   regions=[(0, 0, HW[1] - 1, HW[0] - 1, DELTA_CM)])
    out = tmp_path / "soak.json"
    assert bench(["soak", "--minutes", "0.2", "--sample-s", "0.5", "--block-s", "3",
                  "--dicom", str(cine), "--model", FIXTURE_MODEL, "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert "--dicom" in doc["config"]["command"] and "--loop" in doc["config"]["command"]
    covered = doc["coverage"]
    assert covered["nerve_area_unit"] == "mm2" and covered["status_polls"] > 0
    assert covered["last_status_area_mm2"] is not None
    assert doc["edge_run_summary"]["nerve_area"]["pixel_area_mm2"] == pytest.approx(PIXEL_MM2)
