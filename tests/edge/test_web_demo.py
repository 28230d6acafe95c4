"""The /app/ page's empty state and its demo clip: before anything plays the page says what to
do (camera, video) and offers a demo clip rendered from the built-in phantom by the server (no
clip and no data-set frame is committed); the demo runs the model in the page like a video."""

from __future__ import annotations

import http.client
import json

import cv2
import numpy as np
import pytest
from web_support import needs_browser, start_browser, wait_for, wait_ready

from edge.io.phantom import PHANTOM_HEIGHT, PHANTOM_WIDTH, PhantomSource
from edge.view.serve import ServeSink
from edge.view.web import demo
from edge.view.web.site import APP_DIR, export_web, runtime_files, site_files

needs_runtime = pytest.mark.skipif(not runtime_files(), reason="the in-browser runtime is not "
                                   "installed: run `make web-runtime` (needs npm)")
MIN_FRAMES = 20  # demo frames processed by the page before the checks
JPEG_TOLERANCE = 8.0  # mean absolute gray difference a JPEG q80 of speckle stays under
MAX_CLIP_BYTES = 2_000_000  # rendered, never committed; small enough for a tablet on Wi-Fi
MEDIA = (".jpg", ".jpeg", ".png", ".webm", ".mp4", ".avi", ".y4m", ".gif")


def test_no_clip_is_committed_in_the_page():
    media = [p.name for p in APP_DIR.rglob("*") if p.suffix.lower() in MEDIA
             and not p.name.startswith("icon-")]
    assert media == []


def test_clip_is_rendered_from_the_phantom(tmp_path):
    files = demo.write_clip(tmp_path)
    assert set(files) == {"demo/phantom.jpg", "demo/phantom.json"}
    info = json.loads(files["demo/phantom.json"].read_text())
    assert files["demo/phantom.jpg"].stat().st_size < MAX_CLIP_BYTES
    sprite = cv2.imread(str(files["demo/phantom.jpg"]), cv2.IMREAD_GRAYSCALE)
    w, h, n = info["width"], info["height"], info["frames"]
    assert sprite.shape == (n * h, w) and info["fps"] > 0
    phantom = PhantomSource(seed=demo.DEMO_SEED)

    def error(k: int, index: int) -> float:
        want = cv2.resize(phantom.frame(index), (w, h), interpolation=cv2.INTER_AREA)
        return float(np.abs(sprite[k * h:(k + 1) * h].astype(int) - want).mean())

    for k in (0, n // 2, n - 1):
        right = error(k, k * demo.DEMO_STEP)
        assert right < JPEG_TOLERANCE, k
        assert right < 0.5 * error(k, k * demo.DEMO_STEP + 1), k  # that frame, not a neighbour


def test_site_serves_and_exports_the_clip(tmp_path):
    files = site_files()
    assert {"demo/phantom.jpg", "demo/phantom.json"} <= set(files)
    assert files["demo/phantom.jpg"] == site_files()["demo/phantom.jpg"]  # rendered once
    if runtime_files():
        out = export_web(tmp_path / "site")
        assert (out / "demo" / "phantom.jpg").read_bytes() == files["demo/phantom.jpg"].read_bytes()


@needs_runtime
def test_server_answers_the_clip_as_jpeg():
    sink = ServeSink.from_spec("127.0.0.1:0", log=None)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=10)
        conn.request("GET", "/app/demo/phantom.jpg")
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
    finally:
        sink.close()
    assert resp.status == 200 and resp.getheader("Content-Type") == "image/jpeg"
    assert body[:2] == b"\xff\xd8" and resp.getheader("Cross-Origin-Resource-Policy")


def _stats(driver) -> dict:
    return driver.execute_script("return nerveEdge.stats()")


def _visible(driver, element_id: str) -> bool:
    return driver.find_element("id", element_id).is_displayed()


@needs_browser
@needs_runtime
def test_empty_page_says_what_to_do_and_plays_the_demo(tmp_path):
    sink = ServeSink.from_spec("127.0.0.1:0", log=None)
    driver = start_browser(tmp_path / "profile")
    try:
        driver.get(f"http://127.0.0.1:{sink.port}/app/")
        wait_ready(driver)
        hint = driver.find_element("id", "empty")
        assert hint.is_displayed()
        for words in ("camera", "Start camera", "Open video", "demo clip", "no patient data"):
            assert words in hint.text, (words, hint.text)
        driver.find_element("id", "demo").click()
        wait_for(driver, lambda d: _stats(d)["frames"] >= MIN_FRAMES,
                 "the demo clip never reached the model in the page")
        got = _stats(driver)
        assert got["fps"] > 0 and {"inference", "draw", "total"} <= set(got["stageMs"])
        assert not _visible(driver, "empty")
        info = json.loads(site_files()["demo/phantom.json"].read_text())
        size = driver.execute_script("const c = document.getElementById('view');"
                                     "return [c.width, c.height];")
        assert size == [info["width"] * info["scale"], info["height"] * info["scale"]]
        assert size == [PHANTOM_WIDTH, PHANTOM_HEIGHT]  # drawn at the phantom's own size
        gray = driver.execute_script(
            "const c = document.getElementById('view'); const d = c.getContext('2d')"
            ".getImageData(0, 0, c.width, c.height).data; let s = 0;"
            "for (let i = 0; i < d.length; i += 4) s += d[i + 2]; return s / (d.length / 4);")
        assert gray > 10, "the canvas stayed black"
        assert driver.find_element("id", "detect").text != "-"  # the HUD shows a result
        before = _stats(driver)["frames"]
        wait_for(driver, lambda d: _stats(d)["frames"] > before + 5, "the demo stopped playing")
        driver.find_element("id", "stop").click()
        wait_for(driver, lambda d: _visible(d, "empty"), "no hint again after Stop")
        assert driver.find_element("id", "message").text == ""
    finally:
        driver.quit()
        sink.close()
