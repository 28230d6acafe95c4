"""The page on a camera: Chromium's fake capture device plays a .y4m made (here, in tmp) of
real ultrasound frames; the page must grab frames, segment them, draw masks and report an FPS
and the per-stage split. A screenshot is saved for the record (printed; also to
$NERVE_EDGE_WEB_SCREENSHOT when set)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from web_support import (
    needs_browser,
    read_gray,
    real_frames,
    start_browser,
    wait_for,
    wait_ready,
    write_y4m,
)

from edge.model.metadata import NERVE_COLOR
from edge.view.serve import ServeSink

pytestmark = needs_browser
CLIP_FRAMES = 30
CAMERA_FPS = 30  # a typical grabber; the page processes each new frame once
CLIP_SIZE = (580, 420)  # the Kaggle scanner's frame size (W, H); even, as 4:2:0 needs
MIN_FRAMES = 20  # processed frames before the checks
STAGES = {"grab", "preprocess", "inference", "postprocess", "draw", "total"}
SCREENSHOT = Path(tempfile.gettempdir()) / "nerve-edge-web-screenshot.png"


@pytest.fixture
def camera_page(tmp_path):
    frames = [cv2.resize(read_gray(f), CLIP_SIZE, interpolation=cv2.INTER_LINEAR)
              for f in real_frames(CLIP_FRAMES)]
    clip = write_y4m(tmp_path / "scan.y4m", frames, fps=CAMERA_FPS)
    sink = ServeSink.from_spec("127.0.0.1:0", log=None)
    driver = start_browser(tmp_path / "profile", (
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}"))
    try:
        driver.get(f"http://127.0.0.1:{sink.port}/app/")
        yield driver
    finally:
        driver.quit()
        sink.close()


def stats(driver) -> dict:
    return driver.execute_script("return nerveEdge.stats()")


def test_fake_camera_of_real_frames_gives_masks_and_fps(camera_page):
    driver = camera_page
    ready = wait_ready(driver)
    assert ready["backend"] == driver.find_element("id", "backend").text
    driver.find_element("id", "camera").click()
    wait_for(driver, lambda d: stats(d)["frames"] >= MIN_FRAMES,
             "the camera never delivered enough frames to the page")
    got = stats(driver)
    assert got["fps"] > 0
    assert STAGES <= set(got["stageMs"]), got["stageMs"]
    assert got["backend"] == ready["backend"]
    assert driver.execute_script("return document.getElementById('view').width") == CLIP_SIZE[0]
    options = driver.find_elements("css selector", "#devices option")
    assert options and options[0].text, "the device picker lists no camera"
    wait_for(driver, lambda d: d.find_element("id", "detect").text.startswith("NERVE"),
             "no nerve outlined on any of the real frames")
    overlay = driver.execute_script(
        "const c = document.getElementById('view');"
        "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);")
    rgba = np.asarray(overlay, np.uint8).reshape(CLIP_SIZE[1], CLIP_SIZE[0], 4)
    # The nerve's fill (edge.model.metadata.NERVE_COLOR, blended at 0.4) over gray frames: its
    # strongest channel well above its weakest (0.4 * 255 = 102 for the amber #ffc800).
    rgb = [int(NERVE_COLOR[i:i + 2], 16) for i in (1, 3, 5)]
    tinted = (rgba[..., int(np.argmax(rgb))].astype(int) - rgba[..., int(np.argmin(rgb))]) > 60
    assert tinted.sum() > 100, "no mask drawn on the canvas"
    print(f"web camera: {got['backend']}, {got['fps']:.1f} FPS, stages "
          + ", ".join(f"{k} {v:.2f} ms" for k, v in got["stageMs"].items()))
    for path in filter(None, (SCREENSHOT, os.environ.get("NERVE_EDGE_WEB_SCREENSHOT"))):
        assert driver.save_screenshot(str(path)), f"could not write {path}"
        print(f"web runner screenshot: {path}")


@pytest.fixture
def video_file(tmp_path) -> Path:
    """A VP8 .webm of real frames (what a browser plays; written by OpenCV here, in tmp)."""
    path = tmp_path / "scan.webm"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), CAMERA_FPS, CLIP_SIZE)
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write VP8 .webm")
    for f in real_frames(CLIP_FRAMES):
        gray = cv2.resize(read_gray(f), CLIP_SIZE, interpolation=cv2.INTER_LINEAR)
        writer.write(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def test_video_file_the_user_opens_gives_masks(video_file, tmp_path):
    sink = ServeSink.from_spec("127.0.0.1:0", log=None)
    driver = start_browser(tmp_path / "profile")
    try:
        driver.get(f"http://127.0.0.1:{sink.port}/app/")
        wait_ready(driver)
        driver.find_element("id", "file").send_keys(str(video_file))  # the file picker
        wait_for(driver, lambda d: stats(d)["frames"] >= MIN_FRAMES,
                 "the opened video never delivered enough frames to the page")
        assert driver.execute_script("return document.getElementById('view').width") == \
            CLIP_SIZE[0]
        wait_for(driver, lambda d: d.find_element("id", "detect").text.startswith("NERVE"),
                 "no nerve outlined on the video's real frames")
    finally:
        driver.quit()
        sink.close()
