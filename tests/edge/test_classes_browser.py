"""The clinic view of a multi-class model in headless Chromium: one row per structure in its
colour, and the safety warning shown only when a safety structure is near the centre line."""

from __future__ import annotations

import threading

import pytest
from test_classes import CENTRE, LEFT, served_result
from test_serve_browser import driver, js, pytestmark, wait_for  # noqa: F401 (fixture, skip)

from edge.view.serve import ServeSink

FEED_PERIOD_S = 0.1  # the page polls status every 0.5 s


@pytest.fixture
def feeding():
    """A served view and a function that switches the frame the fake loop feeds it."""
    sink = ServeSink.from_spec("127.0.0.1:0", log=None)
    current, stop = {"image": LEFT}, threading.Event()

    def feed() -> None:
        index = 0
        while not stop.is_set():
            result = served_result(current["image"])
            result.frame_index = index
            sink.write(result)
            index += 1
            stop.wait(FEED_PERIOD_S)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    yield sink, current
    stop.set()
    thread.join()
    sink.close()


def test_clinic_view_lists_classes_in_colour_and_warns(feeding, driver):  # noqa: F811
    sink, current = feeding
    driver.get(sink.url)
    rows = "return [...document.querySelectorAll('#classes tbody tr')].map(r => r.innerText)"
    wait_for(driver, lambda d: len(js(d, rows)) == 2, "the per-class rows never appeared")
    assert [r.split("\t")[0].strip() for r in js(driver, rows)] == ["nerve", "vessel (avoid)"]
    assert js(driver, "return document.querySelectorAll('.swatch')[1].style.background") \
        == "rgb(255, 48, 48)"  # the sidecar's "#ff3030"
    assert js(driver, "return document.getElementById('safety').hidden") is True
    current["image"] = CENTRE
    wait_for(driver, lambda d: not js(d, "return document.getElementById('safety').hidden"),
             "the safety warning never showed")
    assert driver.find_element("id", "safety").text == "VESSEL NEAR CENTRE LINE"
