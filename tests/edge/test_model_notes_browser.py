"""The clinic view (headless Chromium) of a nerve-only model: the nerve's swatch in the colour
the overlay draws (read from status.json), and the model's warning (--allow-low-dice) shown."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from test_serve_browser import driver, js, pytestmark, wait_for  # noqa: F401 (fixture, skip)

from edge.model.metadata import NERVE_COLOR
from edge.model.postprocess import PostprocessConfig, Postprocessor
from edge.types import FrameResult
from edge.view.serve import ServeSink

FEED_PERIOD_S = 0.1  # the page polls status every 0.5 s
FRAME_HW = (120, 160)
WARNING = "trial_int8.tflite: converted below the Dice floor, forced with --allow-low-dice"


def nerve_only_result(index: int) -> FrameResult:
    prob = np.zeros((16, 24), np.float32)
    prob[4:12, 6:18] = 0.9
    post = Postprocessor(PostprocessConfig())([prob[None, :, :, None]], FRAME_HW)
    frame = np.full((*FRAME_HW, 3), 90, np.uint8)
    return FrameResult(frame_index=index, name=str(index), frame=frame, mask=post.mask,
                       detected=post.detected, area_px=post.area_px, classes=post.classes)


@pytest.fixture
def feeding():
    sink = ServeSink.from_spec("127.0.0.1:0", log=None, warnings=[WARNING])
    stop = threading.Event()

    def feed() -> None:
        index = 0
        while not stop.is_set():
            sink.write(nerve_only_result(index))
            index += 1
            stop.wait(FEED_PERIOD_S)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    yield sink
    stop.set()
    thread.join()
    sink.close()


def test_clinic_view_shows_the_nerve_colour_and_the_models_warning(feeding, driver):  # noqa: F811
    driver.get(feeding.url)
    swatch = "const s = document.getElementById('nerveswatch'); return s && s.style.background"
    wait_for(driver, lambda d: js(d, swatch), "the nerve's swatch never appeared")
    r, g, b = (int(NERVE_COLOR[i:i + 2], 16) for i in (1, 3, 5))
    assert js(driver, swatch) == f"rgb({r}, {g}, {b})"  # as the browser writes it
    assert js(driver, "return document.getElementById('modelwarn').hidden") is False
    assert driver.find_element("id", "modelwarn").text == WARNING
