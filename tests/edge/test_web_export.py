"""The exported folder (edge-run --export-web) on a plain static web server that sends no
special headers: the service worker adds the cross-origin isolation headers, and after its
one reload (before the engine starts) the page runs threaded WASM."""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from web_support import REPO, needs_browser, start_browser, wait_ready

pytestmark = needs_browser


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:
        pass


@pytest.fixture
def static_host(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "edge.cli", "--export-web", str(site)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_exported_site_runs_threaded_on_a_plain_static_host(static_host, tmp_path):
    driver = start_browser(tmp_path / "profile")
    try:
        driver.get(static_host)
        # The first load has no isolation headers: it reloads once under its service worker
        # BEFORE its engine starts, so ready resolves only on the page that stays (anything
        # started on the first one would be lost to the reload).
        ready = wait_ready(driver)
        assert driver.execute_script(
            "return performance.getEntriesByType('navigation')[0].type") == "reload"
        assert driver.execute_script("return self.crossOriginIsolated") is True
        assert ready["backendId"] == "wasm-threads"
    finally:
        driver.quit()
