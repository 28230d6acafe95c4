"""A press before the model is ready: *Start camera* or *Open video* pressed while the page
still loads its model waits for nerveEdge.ready ("loading the model…") and then starts, with
no "frame failed" from a missing engine; on a static host's first visit the controls stay off
until the page's one reload, so nothing picked there is lost to it. The test's server holds
the model's download back until the test lets it go, so "early" is certain. Phantom frames:
no data folder needed."""

from __future__ import annotations

import functools
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import pytest
from web_support import needs_browser, start_browser, wait_for, wait_ready, write_y4m

from benchmarks.browser import READY_JS, WAIT_S
from edge.io.phantom import PHANTOM_HEIGHT, PHANTOM_WIDTH, PhantomSource
from edge.view.serve import ServeSink
from edge.view.web import server as web_server
from edge.view.web.site import export_web

pytestmark = needs_browser
MODEL = "model/nerve.tflite"
LOADING = "loading the model…"
CLIP_FRAMES = 20
FPS = 30
MIN_FRAMES = 10  # processed frames once the model is let go
EARLY_S = 1.5  # held back this long after the press: frames with no engine would fail by then
CONTROLS = ("camera", "file", "demo")
FAKE_CAMERA = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")
# Every text the message line shows, from before the press on (a failure cleared later counts).
WATCH_JS = """
const line = document.getElementById('message');
window._messages = [];
new MutationObserver(() => window._messages.push(line.textContent))
  .observe(line, {childList: true, characterData: true, subtree: true});
"""
INSTALLING_JS = """const done = arguments[0];
navigator.serviceWorker.getRegistration().then((r) => done(!!(r && r.installing)),
                                               () => done(false));"""


def phantom_frames() -> list:
    phantom = PhantomSource(seed=0)
    return [phantom.frame(k) for k in range(CLIP_FRAMES)]


@pytest.fixture
def held_model(monkeypatch):
    """/app/ of an edge-run --serve sink whose answer for the model waits for the test."""
    release = threading.Event()
    handle = web_server.handle

    def held(handler, path: str) -> None:
        if path.endswith(MODEL):
            release.wait(WAIT_S)
        handle(handler, path)

    monkeypatch.setattr(web_server, "handle", held)  # serve.py looks it up per request
    sink = ServeSink.from_spec("127.0.0.1:0", log=None)
    try:
        yield f"http://127.0.0.1:{sink.port}/app/", release
    finally:
        release.set()
        sink.close()


def stats(driver) -> dict:
    return driver.execute_script("return nerveEdge.stats()")


def failures(driver) -> list[str]:
    """What the message line said that reports a failure, since WATCH_JS ran."""
    return [m for m in driver.execute_script("return window._messages") if "fail" in m]


def enabled(driver, element_id: str) -> bool:
    return driver.find_element("id", element_id).get_attribute("disabled") is None


def press_early_then_flow(driver, release: threading.Event, control: str, press) -> None:
    """``press`` while the model is held back; nothing fails; frames flow once it comes."""
    wait_for(driver, lambda d: enabled(d, control), f"#{control} never became usable")
    assert driver.execute_script(READY_JS) is None, "the engine was ready before the press"
    driver.execute_script(WATCH_JS)
    press()
    time.sleep(EARLY_S)
    assert failures(driver) == []
    assert driver.find_element("id", "message").text == LOADING
    assert stats(driver)["frames"] == 0 and not enabled(driver, control)
    release.set()
    wait_ready(driver)
    wait_for(driver, lambda d: stats(d)["frames"] >= MIN_FRAMES,
             f"no frames through the model after the early #{control} press")
    assert failures(driver) == []
    assert driver.find_element("id", "message").text == ""
    assert enabled(driver, control)
    assert driver.execute_script("return document.getElementById('view').width") == \
        PHANTOM_WIDTH


def test_camera_pressed_before_the_model_is_ready_starts_once_it_is(held_model, tmp_path):
    url, release = held_model
    clip = write_y4m(tmp_path / "phantom.y4m", phantom_frames(), fps=FPS)
    driver = start_browser(tmp_path / "profile",
                           (*FAKE_CAMERA, f"--use-file-for-fake-video-capture={clip}"))
    try:
        driver.get(url)
        press_early_then_flow(driver, release, "camera",
                              lambda: driver.find_element("id", "camera").click())
    finally:
        driver.quit()


@pytest.fixture
def phantom_webm(tmp_path) -> Path:
    path = tmp_path / "phantom.webm"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), FPS,
                             (PHANTOM_WIDTH, PHANTOM_HEIGHT))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write VP8 .webm")
    for gray in phantom_frames():
        writer.write(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def test_video_opened_before_the_model_is_ready_plays_once_it_is(held_model, phantom_webm,
                                                                  tmp_path):
    url, release = held_model
    driver = start_browser(tmp_path / "profile")
    try:
        driver.get(url)
        picker = driver.find_element("id", "file")
        press_early_then_flow(driver, release, "file", lambda: picker.send_keys(str(phantom_webm)))
    finally:
        driver.quit()


class _Held(SimpleHTTPRequestHandler):
    """A plain static host (no isolation headers) whose model download waits for the test."""

    def __init__(self, *args, release: threading.Event, **kwargs) -> None:
        self.release = release
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        if self.path.split("?")[0].endswith(MODEL):
            self.release.wait(WAIT_S)
        super().do_GET()

    def log_message(self, format, *args) -> None:
        pass


def test_controls_stay_off_until_the_static_hosts_one_reload(tmp_path):
    site = export_web(tmp_path / "site")
    release = threading.Event()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                functools.partial(_Held, directory=str(site), release=release))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    driver = start_browser(tmp_path / "profile")
    try:
        driver.get(f"http://127.0.0.1:{httpd.server_address[1]}/")
        # The service worker's install fetches the held model: the page cannot know yet that
        # it stays (it reloads once the worker claims it), so nothing may be picked on it.
        wait_for(driver, lambda d: d.execute_async_script(INSTALLING_JS),
                 "the service worker never started installing")
        assert driver.execute_script("return self.crossOriginIsolated") is False
        assert [c for c in CONTROLS if enabled(driver, c)] == []
        release.set()
        wait_ready(driver)
        assert driver.execute_script(
            "return performance.getEntriesByType('navigation')[0].type") == "reload"
        wait_for(driver, lambda d: all(enabled(d, c) for c in CONTROLS),
                 "the controls stayed off on the page that stays")
    finally:
        release.set()
        driver.quit()
        httpd.shutdown()
        httpd.server_close()
