"""The clinic view in a real headless Chromium (Debian's chromium + chromium-driver, installed
by `make browser`): the video shows frames, the status updates, freeze frees the stream, and
a screenshot is saved for the record (printed; also to $NERVE_EDGE_SCREENSHOT when set)."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.types import FrameResult
from edge.view.serve import ServeSink

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MISSING = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"{' and '.join(MISSING)} missing: run `make browser` "
    "(apt-get install chromium chromium-driver)")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                "(pip install -e '.[dev]')")

FRAME_HW = (420, 580)
FEED_PERIOD_S = 0.04  # 25 FPS fake loop: enough for the page, light on a shared CPU
WAIT_S = 30.0  # a cold Chromium start on a busy 2-core machine can take a while
LANDSCAPE = (1280, 800)  # a tablet on its side
PORTRAIT = (412, 915)  # a phone held upright
SCREENSHOT = Path(tempfile.gettempdir()) / "nerve-edge-serve-screenshot.png"
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run",
               "--disable-dev-shm-usage"]


def phantom_frames(count: int) -> list[FrameResult]:
    """Ultrasound-like frames with their true nerve masks (no model needed here)."""
    try:
        from edge.io.phantom import PhantomSource
    except ImportError:  # before sources.py exists: plain gradient frames and a disc
        return [_synthetic(i) for i in range(count)]
    source = PhantomSource(width=FRAME_HW[1], height=FRAME_HW[0], seed=0)
    results = []
    for i in range(count):
        frame = source.read()
        image = frame.image if frame.image.ndim == 3 else cv2.cvtColor(frame.image,
                                                                       cv2.COLOR_GRAY2BGR)
        mask = source.truth(frame.index)
        results.append(_result(i, image, mask))
    source.close()
    return results


def _synthetic(index: int) -> FrameResult:
    h, w = FRAME_HW
    image = np.full((h, w, 3), 70, np.uint8)
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, (w // 3 + index, h // 2), 40, 255, -1)
    return _result(index, image, mask)


def _result(index: int, image: np.ndarray, mask: np.ndarray) -> FrameResult:
    area = int((mask > 0).sum())
    return FrameResult(frame_index=index, name=f"{index:06d}", frame=image, mask=mask,
                       detected=area > 0, area_px=area, fps=31.2,
                       stage_ms={"capture": 0.8, "preprocess": 0.6, "inference": 21.4,
                                 "postprocess": 0.9, "render": 1.1})


@pytest.fixture
def served():
    sink = ServeSink.from_spec("127.0.0.1:0", log=None)
    results, stop = phantom_frames(60), threading.Event()

    def feed() -> None:
        index = 0
        while not stop.is_set():
            result = results[index % len(results)]
            result.frame_index = index  # a fresh index, so the page sees the status move
            sink.write(result)
            index += 1
            stop.wait(FEED_PERIOD_S)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    yield sink
    stop.set()
    thread.join()
    sink.close()


@pytest.fixture
def driver(tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in [*CHROME_ARGS, f"--user-data-dir={tmp_path / 'profile'}",
                f"--window-size={LANDSCAPE[0]},{LANDSCAPE[1]}"]:
        options.add_argument(arg)
    # An explicit driver path: selenium-manager would otherwise try to download one.
    chrome = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield chrome
    chrome.quit()


def js(driver, script: str):
    return driver.execute_script(script)


def wait_for(driver, predicate, message: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(predicate, message)


def save_screenshot(driver, path: Path) -> None:
    assert driver.save_screenshot(str(path)), f"could not write {path}"
    shot = cv2.imread(str(path))
    assert shot is not None and shot.std() > 5, "screenshot is blank"
    print(f"clinic view screenshot: {path}")


def test_page_shows_live_video_and_status(served, driver):
    driver.get(served.url)
    wait_for(driver, lambda d: js(d, "return document.getElementById('video').naturalWidth") > 0,
             "the video element never showed a frame")
    size = js(driver, "const v = document.getElementById('video');"
                      "return [v.naturalWidth, v.naturalHeight];")
    assert size == [FRAME_HW[1], FRAME_HW[0]]

    meta = lambda d: d.find_element("id", "meta").text  # noqa: E731
    first = wait_for(driver, lambda d: meta(d).startswith("frame ") and meta(d),
                     "the status text never appeared")
    wait_for(driver, lambda d: meta(d) != first, "the status text never updated")
    assert driver.find_element("id", "detect").text == "NERVE DETECTED"
    assert driver.find_element("id", "fps").text == "31.2"
    assert "inference" in driver.find_element("id", "stages").text
    assert served.viewers == 1

    save_screenshot(driver, SCREENSHOT)
    if os.environ.get("NERVE_EDGE_SCREENSHOT"):
        save_screenshot(driver, Path(os.environ["NERVE_EDGE_SCREENSHOT"]))
    driver.set_window_size(*PORTRAIT)
    save_screenshot(driver, SCREENSHOT.with_name(SCREENSHOT.stem + "-portrait.png"))


def test_freeze_releases_the_stream_and_opacity_reconnects(served, driver):
    driver.get(served.url)
    wait_for(driver, lambda d: js(d, "return document.getElementById('video').naturalWidth") > 0,
             "the video element never showed a frame")
    driver.find_element("id", "freeze").click()
    assert driver.find_element("id", "badge").text == "FROZEN"
    assert js(driver, "return document.getElementById('still').width") == FRAME_HW[1]
    wait_for(driver, lambda d: served.viewers == 0, "a frozen view should close its stream")

    driver.find_element("id", "freeze").click()
    wait_for(driver, lambda d: served.viewers == 1, "unfreeze should reopen the stream")
    js(driver, "const a = document.getElementById('alpha'); a.value = 0.8;"
               "a.dispatchEvent(new Event('change'));")
    assert "alpha=0.80" in js(driver, "return document.getElementById('video').src")
    wait_for(driver, lambda d: js(d, "return document.getElementById('video').naturalWidth") > 0,
             "the stream at the new opacity never showed a frame")
