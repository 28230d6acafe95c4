"""The WebGPU backend, on Chromium's software WebGPU (SwiftShader): the page must pick WebGPU
first, compile the web model there, read the outputs back, and give the same masks as WASM
on real frames. (Speed on SwiftShader means nothing; it is not measured.)"""

from __future__ import annotations

import numpy as np
import pytest
from web_support import (
    dice_agreement,
    needs_browser,
    read_gray,
    real_frames,
    segment_in_page,
    start_browser,
    wait_ready,
)

from edge.view.serve import ServeSink

pytestmark = needs_browser
FRAMES = 3  # SwiftShader runs a frame in ~0.3 s
MIN_MEAN_DICE = 0.97

HAS_ADAPTER_JS = """const done = arguments[0];
(navigator.gpu ? navigator.gpu.requestAdapter() : Promise.resolve(null))
  .then((a) => done(!!a), () => done(false));"""


@pytest.fixture
def server():
    sink = ServeSink.from_spec("127.0.0.1:0", log=None)
    yield f"http://127.0.0.1:{sink.port}/app/"
    sink.close()


def masks(url: str, profile, frames, software_webgpu: bool) -> tuple[dict, list]:
    driver = start_browser(profile, software_webgpu=software_webgpu)
    try:
        driver.get(url)
        if software_webgpu and not driver.execute_async_script(HAS_ADAPTER_JS):
            pytest.skip("this Chromium offers no software WebGPU adapter (SwiftShader)")
        ready = wait_ready(driver)
        return ready, [segment_in_page(driver, read_gray(f))["mask"] for f in frames]
    finally:
        driver.quit()


def test_webgpu_is_preferred_and_agrees_with_wasm(server, tmp_path):
    frames = real_frames(FRAMES)
    gpu, gpu_masks = masks(server, tmp_path / "gpu", frames, software_webgpu=True)
    assert gpu["backendId"] == "webgpu" and gpu["available"][0] == "webgpu"
    cpu, cpu_masks = masks(server + "?backend=wasm", tmp_path / "cpu", frames, False)
    assert cpu["backendId"] == "wasm"
    scores = [dice_agreement(a, b) for a, b in zip(gpu_masks, cpu_masks, strict=True)]
    print(f"web webgpu: mean Dice agreement with WASM {np.mean(scores):.4f}")
    assert np.mean(scores) >= MIN_MEAN_DICE
