"""The page opened over plain http from another device (a LAN address, not localhost): the
browser gives it no camera, no service worker and no threads. It must still start on one WASM
thread and say why the camera is off, instead of failing."""

from __future__ import annotations

import pytest
from web_support import needs_browser, start_browser, wait_ready

from edge.view.https import lan_address
from edge.view.serve import ServeSink
from edge.view.tls import ServeOptions

pytestmark = needs_browser


def test_plain_http_lan_page_runs_on_one_thread_and_explains_the_camera(tmp_path):
    address = lan_address()
    if address is None:
        pytest.skip("no non-loopback IPv4 address on this machine")
    # A token is made; /app/ needs none. Plain HTTP beyond loopback only when asked.
    sink = ServeSink.from_spec(f"{address}:0", log=None,
                               options=ServeOptions(insecure_http=True, mdns=False))
    driver = start_browser(tmp_path / "profile")
    try:
        driver.get(f"http://{address}:{sink.port}/app/")
        assert driver.execute_script("return window.isSecureContext") is False
        ready = wait_ready(driver)
        assert ready["backendId"] == "wasm" and ready["available"] == ["wasm"]
        assert driver.find_element("id", "camera").get_attribute("disabled") is not None
        assert "secure page" in driver.find_element("id", "message").text
        assert driver.execute_script("return navigator.serviceWorker === undefined")
    finally:
        driver.quit()
        sink.close()
