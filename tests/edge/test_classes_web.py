"""The in-browser runner (edge/view/web/app) on the 2-class stand-in: per-class results from
window.nerveEdge.segment(), and the same class-id map as edge-run --save-masks writes."""

from __future__ import annotations

import base64
import functools
import http.server
import threading

import cv2
import numpy as np
import pytest
from test_classes import (
    BOTH_GRAY,
    CENTRE,
    LEFT,
    NERVE,
    NERVE_GRAY,
    TWO_CLASS_TFLITE,
    VESSEL,
    image_folder,
)
from web_support import app_page, needs_browser

from benchmarks.browser import IMAGE_JS, benchmark_in_page
from edge.cli import main
from edge.view.web.site import export_web

pytestmark = needs_browser

SEGMENT_CLASSES_JS = IMAGE_JS + """
const [b64, width, height, done] = arguments;
nerveEdge.segment(grayImage(b64, width, height)).then((r) => done({
  detected: r.detected, areaPx: r.areaPx, safetyWarning: r.safetyWarning,
  classes: r.classes.map((c) => ({name: c.name, id: c.id, color: c.color, safety: c.safety,
                                  detected: c.detected, areaPx: c.areaPx,
                                  nearCentre: c.nearCentre})),
  classMap: btoa(String.fromCharCode.apply(null, r.classMap))}), (e) => done({error: String(e)}));
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:
        pass


@pytest.fixture
def page(tmp_path):
    """The exported runner with the 2-class model, on a plain static server, in Chromium."""
    site = export_web(tmp_path / "site", TWO_CLASS_TFLITE)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html?backend=wasm"
    try:
        with app_page(tmp_path / "profile", url) as driver:
            yield driver
    finally:
        server.shutdown()


def segment(driver, gray: np.ndarray) -> dict:
    h, w = gray.shape
    got = driver.execute_async_script(SEGMENT_CLASSES_JS,
                                      base64.b64encode(gray.tobytes()).decode(), w, h)
    assert "error" not in got, got.get("error")
    got["classMap"] = np.frombuffer(base64.b64decode(got["classMap"]), np.uint8).reshape(h, w)
    return got


def test_browser_runner_gives_per_class_results_like_edge_run(page, tmp_path):
    masks = tmp_path / "masks"
    assert main(["--model", str(TWO_CLASS_TFLITE), "--images", str(image_folder(tmp_path)),
                 "--headless", "--quiet", "--save-masks", str(masks)]) == 0
    for name, image, warning in (("a_left", LEFT, False), ("b_centre", CENTRE, True)):
        got = segment(page, image)
        assert [c["name"] for c in got["classes"]] == ["nerve", "vessel"]
        assert got["classes"][1] | {"areaPx": 0} == {
            "name": "vessel", "id": VESSEL, "color": "#ff3030", "safety": True,
            "detected": True, "areaPx": 0, "nearCentre": warning}
        assert got["safetyWarning"] is warning
        assert got["areaPx"] == got["classes"][0]["areaPx"]  # nerve fields from "nerve"
        expected = cv2.imread(str(masks / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(got["classMap"], expected)  # vessel over nerve, as edge
        nerve, vessel = got["classes"]
        assert vessel["areaPx"] == int((expected == VESSEL).sum())  # drawn last: all of it
        assert nerve["areaPx"] >= int((expected == NERVE).sum())  # its own mask, overlap too


def blend(gray: int, rgb: tuple[int, int, int], alpha: float = 0.4) -> list[float]:
    return [gray * (1 - alpha) + c * alpha for c in rgb]


def test_browser_runner_draws_each_class_in_its_colour_and_warns(page):
    benchmark_in_page(page, [CENTRE], count=3)  # the live per-frame work, drawn on the canvas
    pixel = "return Array.from(document.getElementById('view').getContext('2d')" \
            ".getImageData(arguments[0], arguments[1], 1, 1).data.slice(0, 3))"
    vessel_rgb = page.execute_script(pixel, 48, 28)  # inside the vessel on the centre line
    nerve_rgb = page.execute_script(pixel, 80, 30)  # inside the nerve on the right
    # Blended once at the page's opacity 0.4 (the vessel over the nerve, not both blended):
    np.testing.assert_allclose(vessel_rgb, blend(BOTH_GRAY, (0xFF, 0x30, 0x30)), atol=2)
    np.testing.assert_allclose(nerve_rgb, blend(NERVE_GRAY, (0xFF, 0xC8, 0x00)), atol=2)
    assert page.find_element("id", "safety").text == "VESSEL NEAR CENTRE LINE"
