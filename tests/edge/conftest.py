"""Shared fixtures for tests/edge (no TensorFlow here). Keep it small: helpers local to one
test file live in that file. The real data (``shared_data``, ``real_data``) comes from the
one setting in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

SMALL_VIDEO_FRAMES = 12
SMALL_VIDEO_SIZE = (64, 48)  # width, height


def _small_video_frame(index: int) -> np.ndarray:
    # Flat gray at 20 + 20 * index: the index survives lossy coding (MJPG error is a few levels).
    width, height = SMALL_VIDEO_SIZE
    return np.full((height, width, 3), 20 + 20 * index, np.uint8)


@pytest.fixture(scope="session")
def small_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-frame 64x48 MJPG .avi written by cv2.VideoWriter: stands in for a camera or clip.
    Frame i is flat gray at level 20 + 20 * i."""
    path = tmp_path_factory.mktemp("video") / "small.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, SMALL_VIDEO_SIZE)
    assert writer.isOpened(), "this OpenCV build cannot write MJPG .avi"
    for i in range(SMALL_VIDEO_FRAMES):
        writer.write(_small_video_frame(i))
    writer.release()
    return path
