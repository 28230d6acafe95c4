"""edge-run keeps no per-frame state: 20,000 phantom frames through the whole default path
(nerve area, classes, overlay, the --serve status JSON and /metrics, the mm2 area of a source
that knows its pixel size) and no Python allocation line grows with the frame count (see
tests/memory_support.py for how it is measured)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import edge.loop
from tests.memory_support import FRAMES, POLL_EVERY, run_tracked

MODELS = Path(edge.loop.__file__).parent / "models"
# Phantom frames at the fixture's input size: the run is about the loop's bookkeeping, and
# small frames keep it well under a minute on a busy 2-core machine.
WIDTH, HEIGHT = 176, 128
PIXEL_AREA_MM2 = 0.0121  # what a DICOM region with 0.11 mm pixels declares


@pytest.mark.slow  # ~25 s of CPU each
@pytest.mark.parametrize("model, pixel_area_mm2", [
    ("nerve_fixture_int8.tflite", None),  # nerve-only: areas in px
    ("nerve_vessel_int8.tflite", PIXEL_AREA_MM2),  # classes, areas in mm2
])
def test_no_allocation_grows_with_the_frame_count(model, pixel_area_mm2, monkeypatch, tmp_path):
    report = tmp_path / "run.json"
    run = run_tracked(["--source", "phantom", "--width", str(WIDTH), "--height", str(HEIGHT),
                       "--model", str(MODELS / model), "--threads", "1",
                       "--report", str(report)], monkeypatch, pixel_area_mm2)
    assert run.code == 0
    assert run.bounded(), run.failure()

    # The run really took the paths this test is about, and the report kept its meaning.
    doc = json.loads(report.read_text())
    assert doc["frames"] == FRAMES and run.poller.polls == FRAMES // POLL_EVERY
    status = run.poller.last_status
    assert status["classes"] and (status["area_mm2"] is None) == (pixel_area_mm2 is None)
    nerve = doc["nerve_area"]
    assert nerve["frames"] == FRAMES
    assert nerve["unit"] == ("px" if pixel_area_mm2 is None else "mm2")
    assert 0 < nerve["frames_with_nerve"] <= FRAMES and 0 < nerve["mean"] <= nerve["max"]
    assert doc["classes"]["nerve"]["frames_detected"] == nerve["frames_with_nerve"]
    if pixel_area_mm2 is not None:
        assert set(doc["classes"]) == {"nerve", "vessel"}
        assert doc["classes"]["vessel"]["area_unit"] == "mm2"
