"""Parity: on real ultrasound frames, the page's masks (LiteRT.js in headless Chromium) against
`edge-run --images DIR --save-masks OUT` with the same web model. Mean Dice agreement >= 0.97.

The page emulates OpenCV's fixed-point resizes and gray weights bit for bit, so on this
machine the masks come out identical. What could still differ elsewhere: LiteRT.js's wasm
XNNPACK may round an int8 requantization differently from the native build, and another
OpenCV version (older gray weights, no SIMD) shifts a gray level by one; either moves a few
boundary pixels, never whole masks: hence a Dice bound, not equality."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from web_support import (
    REPO,
    WEB_MODEL,
    app_page,
    dice_agreement,
    needs_browser,
    read_gray,
    real_frames,
    segment_in_page,
)

pytestmark = needs_browser
FRAMES = 40  # spread over all subjects
MIN_MEAN_DICE = 0.97
EDGE_RUN_TIMEOUT_S = 300


def edge_run_masks(frames, tmp_path):
    """Masks from edge-run itself (this checkout's code, the same web model)."""
    src, out = tmp_path / "frames", tmp_path / "masks"
    src.mkdir()
    for f in frames:
        (src / f.name).symlink_to(f)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "edge.cli", "--images", str(src), "--headless", "--quiet",
           "--model", str(WEB_MODEL), "--save-masks", str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=EDGE_RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    return {f.stem: read_gray(out / f"{f.stem}.png") for f in frames}


@pytest.fixture
def page(tmp_path):
    with app_page(tmp_path / "profile") as driver:
        yield driver


def test_browser_masks_match_edge_run(page, tmp_path):
    frames = real_frames(FRAMES)
    reference = edge_run_masks(frames, tmp_path)
    scores, detected = [], 0
    for f in frames:
        gray = read_gray(f)
        got = segment_in_page(page, gray)
        assert got["mask"].shape == gray.shape and (got["width"], got["height"]) == gray.shape[::-1]
        assert got["areaPx"] == int((got["mask"] > 0).sum())
        assert got["detected"] == (got["areaPx"] > 0)
        detected += got["detected"]
        scores.append(dice_agreement(got["mask"], reference[f.stem]))
    mean = float(np.mean(scores))
    print(f"web parity: mean Dice agreement {mean:.4f}, min {min(scores):.4f} over "
          f"{len(scores)} real frames; nerve found on {detected}")
    assert detected > len(frames) // 2, "the model found a nerve on too few real frames"
    assert mean >= MIN_MEAN_DICE
