"""Shared by the in-browser runner's tests (tests/edge/test_web_*.py): the browser helpers of
benchmarks/browser.py (Debian's chromium + chromedriver via selenium, as test_serve_browser.py
drives them), a skip marker, and real frames from the data folder."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.browser import (  # noqa: F401  (re-exported for the test files)
    browser_missing,
    dice_agreement,
    segment_in_page,
    start_browser,
    wait_for,
    wait_ready,
    write_y4m,
)
from tests.conftest import require_data

REPO = Path(__file__).resolve().parents[2]
WEB_MODEL = REPO / "edge" / "models" / "nerve_default_web.tflite"
KAGGLE = "kaggle-nerve/train"

needs_browser = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))


def real_frames(count: int) -> list[Path]:
    """``count`` image files spread over the Kaggle folder (skips the test when absent)."""
    folder = require_data(*KAGGLE.split("/"))  # the suite's one data setting (tests/conftest)
    files = sorted(p for p in folder.glob("*.png") if not p.stem.endswith("_mask"))
    step = max(1, len(files) // count)
    return files[::step][:count]


def read_gray(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert image is not None, f"cannot read {path}"
    return image


@contextlib.contextmanager
def app_page(profile: Path, url: str | None = None) -> Iterator:
    """Chromium on the /app/ runner of a fresh ``edge-run --serve`` sink (or on ``url``),
    ready to segment; closed after."""
    from edge.view.serve import ServeSink

    sink = None if url else ServeSink.from_spec("127.0.0.1:0", log=None)
    driver = start_browser(profile)
    try:
        driver.get(url or f"http://127.0.0.1:{sink.port}/app/")
        wait_ready(driver)
        yield driver
    finally:
        driver.quit()
        if sink is not None:
            sink.close()
