"""Offline: after one visit, the page, the runtime and the model come from the service
worker's cache. The kit's server is then stopped AND DevTools cuts the network; a reload must
still start the engine and segment a frame. Needs no real data (a synthetic frame)."""

from __future__ import annotations

import numpy as np
import pytest
from web_support import needs_browser, segment_in_page, start_browser, wait_for, wait_ready

from edge.view.serve import ServeSink

pytestmark = needs_browser
CACHE = "nerve-edge-app-v2"
MUST_CACHE = ("app/model/nerve.tflite", "app/model/nerve.json", "app/runtime/litert.js",
              "app/app.js", ".wasm")
FRAME_HW = (240, 320)

CACHED_JS = """const [name, done] = arguments;
caches.open(name).then((c) => c.keys()).then((ks) => done(ks.map((r) => r.url)),
                                             () => done([]));"""


def cached(driver) -> list[str]:
    return driver.execute_async_script(CACHED_JS, CACHE)


def all_cached(urls: list[str]) -> bool:
    return all(any(u.split("?")[0].endswith(m) or (m == ".wasm" and u.endswith(m)) for u in urls)
               for m in MUST_CACHE)


def frame() -> np.ndarray:
    """A dark frame with a bright ellipse: enough for segment() to run end to end."""
    yy, xx = np.mgrid[: FRAME_HW[0], : FRAME_HW[1]]
    inside = ((xx - 160) / 50.0) ** 2 + ((yy - 120) / 30.0) ** 2 < 1
    return np.where(inside, 180, 40).astype(np.uint8)


@pytest.fixture
def visited(tmp_path):
    """A browser that has opened /app/ once (service worker installed, files cached)."""
    sink = ServeSink.from_spec("127.0.0.1:0", log=None)
    driver = start_browser(tmp_path / "profile")
    url = f"http://127.0.0.1:{sink.port}/app/"
    try:
        driver.get(url)
        wait_ready(driver)
        wait_for(driver, lambda d: all_cached(cached(d)), "the service worker never cached "
                 f"the page, runtime and model: {cached(driver)}")
        yield driver, sink, url
    finally:
        driver.quit()
        sink.close()


def test_page_runs_offline_after_one_visit(visited):
    driver, sink, url = visited
    online = wait_ready(driver)
    sink.close()  # the kit is gone ...
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {  # ... and so is the network
        "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    driver.get(url)
    offline = wait_ready(driver)
    assert offline["backend"] == online["backend"]
    assert driver.execute_script("return navigator.serviceWorker.controller !== null")
    got = segment_in_page(driver, frame())
    assert got["mask"].shape == FRAME_HW
    assert got["ms"] > 0


def test_served_page_is_cross_origin_isolated(visited):
    driver, _, _ = visited
    assert driver.execute_script("return self.crossOriginIsolated") is True
    assert wait_ready(driver)["backendId"] == "wasm-threads"
