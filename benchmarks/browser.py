"""Driving the in-browser runner (/app/) in a real headless Chromium: Debian's chromium +
chromedriver through selenium. Shared by the web benchmark (benchmarks/web.py) and the browser
tests (tests/edge/test_web_*.py). No TensorFlow here."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import numpy as np

from edge.view.web.site import RUNTIME_MISSING, runtime_files

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_S = 90.0  # a cold Chromium + a 9 MB wasm compile on a busy 2-core machine
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run",
               "--disable-dev-shm-usage", "--window-size=1280,800"]
# WebGPU on SwiftShader (Chromium's software GPU): proves the WebGPU code path on a machine
# without a GPU; its speed means nothing.
SOFTWARE_WEBGPU_ARGS = ["--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader",
                        "--enable-features=Vulkan", "--use-angle=swiftshader"]


def browser_missing() -> str | None:
    """Why the browser cannot be driven here (one line), or None when it can."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        return (f"{' and '.join(missing)} missing: run `make browser` "
                "(apt-get install chromium chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if not runtime_files():
        return RUNTIME_MISSING
    return None


def start_browser(profile: Path, extra_args: tuple[str, ...] = (), software_webgpu: bool = False):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    base = CHROME_ARGS
    if software_webgpu:
        base = [a for a in CHROME_ARGS if a != "--disable-gpu"] + SOFTWARE_WEBGPU_ARGS
    for arg in [*base, f"--user-data-dir={profile}", *extra_args]:
        options.add_argument(arg)
    # An explicit driver path: selenium-manager would otherwise try to download one.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(WAIT_S)
    return driver


def wait_for(driver, predicate, message: str, timeout_s: float = WAIT_S):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout_s, poll_frequency=0.2).until(predicate, message)


# Hooks window.nerveEdge.ready once per document and reads what it settled to (null while
# pending). Synchronous, so a document that goes away (the exported page's one reload under
# its service worker, before its engine starts) only means "not yet": the next poll hooks the
# document that replaced it. An asynchronous script would end in a script timeout there.
READY_JS = """
if (!window.nerveEdge) return null;
if (!('_nerveReady' in window)) {
  window._nerveReady = null;
  nerveEdge.ready.then((r) => { window._nerveReady = {ok: r}; },
                       (e) => { window._nerveReady = {error: String(e)}; });
}
return window._nerveReady;
"""


def wait_ready(driver) -> dict:
    """Await window.nerveEdge.ready on the page that stays; fail with the page's own error
    when it rejects."""
    got = wait_for(driver, lambda d: d.execute_script(READY_JS),
                   "window.nerveEdge.ready never settled")
    if "error" in got:
        raise RuntimeError(f"the page did not start: {got['error']}")
    return got["ok"]


# Gray bytes (base64) -> an ImageData with R = G = B, as a gray frame decodes in a browser.
IMAGE_JS = """
function grayImage(b64, width, height) {
  const gray = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const image = new ImageData(width, height);
  for (let i = 0; i < gray.length; i++) image.data.set([gray[i], gray[i], gray[i], 255], 4 * i);
  return image;
}
"""

SEGMENT_JS = IMAGE_JS + """
const [b64, width, height, done] = arguments;
nerveEdge.segment(grayImage(b64, width, height)).then((r) => {
  let s = '';
  for (let i = 0; i < r.mask.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, r.mask.subarray(i, i + 0x8000));
  }
  done({mask: btoa(s), width: r.width, height: r.height, detected: r.detected,
        areaPx: r.areaPx, ms: r.ms, stageMs: r.stageMs});
}, (e) => done({error: String(e)}));
"""

BENCH_JS = IMAGE_JS + """
const [frames, count, done] = arguments;
const images = frames.map(([b64, w, h]) => grayImage(b64, w, h));
nerveEdge.benchmark(images, count).then(done, (e) => done({error: String(e)}));
"""


def _b64(gray: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(gray).tobytes()).decode()


def segment_in_page(driver, gray: np.ndarray) -> dict:
    """The page's nerveEdge.segment on one gray frame (sent as RGBA with R=G=B)."""
    h, w = gray.shape
    got = driver.execute_async_script(SEGMENT_JS, _b64(gray), w, h)
    if "error" in got:
        raise RuntimeError(f"segment failed in the page: {got['error']}")
    got["mask"] = np.frombuffer(base64.b64decode(got["mask"]), np.uint8).reshape(h, w)
    return got


def benchmark_in_page(driver, grays: list[np.ndarray], count: int) -> dict:
    """nerveEdge.benchmark: the page's live per-frame work on these frames, back to back."""
    frames = [[_b64(g), g.shape[1], g.shape[0]] for g in grays]
    got = driver.execute_async_script(BENCH_JS, frames, count)
    if "error" in got:
        raise RuntimeError(f"benchmark failed in the page: {got['error']}")
    return got


def dice_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two 0/255 masks; two empty masks agree fully (1.0)."""
    a, b = a > 0, b > 0
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """A raw 4:2:0 .y4m of gray frames (even sizes): Chromium's fake camera plays it in a loop."""
    h, w = frames[0].shape
    chroma = np.full((h // 2) * (w // 2), 128, np.uint8).tobytes()
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            f.write(b"FRAME\n" + np.ascontiguousarray(frame).tobytes() + chroma + chroma)
    return path
