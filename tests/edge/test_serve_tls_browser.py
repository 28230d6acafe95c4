"""Issue 23's criterion: a tablet on the LAN opens the board over HTTPS and gets the real
runner. Chromium trusts the board's generated CA through an NSS database (certutil, in a HOME
of this test's own; never --ignore-certificate-errors) and reaches the board by its mDNS name
(nerve-edge-HOST.local) mapped to 127.0.0.1 (--host-resolver-rules), so it judges the page as
a tablet on the Wi-Fi would: a secure, cross-origin-isolated page, threaded WASM, a fake
camera's real frames segmented, offline after the first visit. Negative cases: a name the
certificate does not cover, an expired certificate, a certificate for a public name signed
with the board's CA key (the name constraint); pairing by the QR link sets the cookie."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import pytest
from web_support import (
    needs_browser,
    read_gray,
    real_frames,
    start_browser,
    wait_for,
    wait_ready,
    write_y4m,
)

from edge.view import certs
from edge.view.mdns import board_name
from edge.view.serve import ServeSink
from edge.view.tls import ServeOptions, server_context
from tests.edge.test_serve import Feeder
from tests.edge.test_web_offline import all_cached, cached

pytestmark = [needs_browser, pytest.mark.skipif(shutil.which("certutil") is None,
                                                reason="certutil missing: apt-get install "
                                                       "libnss3-tools (make browser)")]
TOKEN = "tablet-test-token-0123456789"
CLIP_FRAMES, CLIP_SIZE, FPS = 30, (580, 420), 30
MIN_FRAMES = 20
OTHER_NAME = "not-the-board.example"  # mapped to 127.0.0.1 too; no certificate covers it
PUBLIC_NAME = "www.example.com"  # a site outside the CA's name constraints


def trust_ca(home: Path, ca: Path) -> None:
    """The CA in $HOME/.pki/nssdb, where Chromium on Linux reads trusted roots."""
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{db}", "-n", "nerve-edge test CA",
                    "-t", "C,,", "-i", str(ca)], check=True)


@contextlib.contextmanager
def open_board(tmp_path: Path, monkeypatch, extra_args: tuple[str, ...] = ()):
    """A TLS web view (as beyond loopback, here on 127.0.0.1) with a token, and a Chromium
    that trusts its CA and resolves the board's names to 127.0.0.1."""
    sink = ServeSink.from_spec("127.0.0.1:0", token=TOKEN, log=None,
                               options=ServeOptions(tls="on", mdns=False))
    home = tmp_path / "home"
    trust_ca(home, sink.security.ca)
    monkeypatch.setenv("HOME", str(home))  # chromedriver and Chromium inherit it
    name = board_name()
    driver = start_browser(tmp_path / "profile", (
        f"--host-resolver-rules=MAP {name} 127.0.0.1, MAP {OTHER_NAME} 127.0.0.1, "
        f"MAP {PUBLIC_NAME} 127.0.0.1",
        *extra_args))
    try:
        yield sink, driver, f"https://{name}:{sink.port}"
    finally:
        driver.quit()
        sink.close()


@pytest.fixture
def board(tmp_path, monkeypatch):
    with open_board(tmp_path, monkeypatch) as got:
        yield got


@pytest.fixture
def board_with_camera(tmp_path, monkeypatch):
    """The same, with a fake camera that plays real ultrasound frames."""
    frames = [cv2.resize(read_gray(f), CLIP_SIZE) for f in real_frames(CLIP_FRAMES)]
    clip = write_y4m(tmp_path / "scan.y4m", frames, fps=FPS)
    with open_board(tmp_path, monkeypatch, (
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}")) as got:
        yield got


def test_tablet_over_https_gets_a_secure_isolated_threaded_runner_on_its_camera(
        board_with_camera):
    sink, driver, origin = board_with_camera
    driver.get(f"{origin}/app/?threads=2")
    ready = wait_ready(driver)
    assert driver.execute_script("return window.isSecureContext") is True
    assert driver.execute_script("return window.crossOriginIsolated") is True
    assert ready["backendId"] == "wasm-threads" and "2 threads" in ready["backend"], ready
    driver.find_element("id", "camera").click()  # allowed: a secure page
    wait_for(driver, lambda d: d.execute_script("return nerveEdge.stats()")["frames"]
             >= MIN_FRAMES, "the camera never delivered enough frames to the page")
    wait_for(driver, lambda d: d.find_element("id", "detect").text.startswith("NERVE"),
             "no nerve outlined on any of the real frames")
    assert driver.execute_script("return navigator.serviceWorker !== undefined")


def test_tablet_runner_works_offline_after_one_https_visit(board):
    sink, driver, origin = board
    url = f"{origin}/app/?threads=2"
    driver.get(url)
    online = wait_ready(driver)
    wait_for(driver, lambda d: all_cached(cached(d)), "the service worker never cached the "
             "page, runtime and model over HTTPS")
    sink.close()  # the board is gone ...
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {  # ... and so is the network
        "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    driver.get(url)
    assert wait_ready(driver)["backend"] == online["backend"]
    assert driver.execute_script("return navigator.serviceWorker.controller !== null")
    assert driver.execute_script("return window.crossOriginIsolated") is True


def test_pairing_link_sets_the_cookie_and_leaves_the_address_bar(board):
    sink, driver, origin = board
    feeder = Feeder(sink)  # the view's stream needs frames for its page to finish loading
    try:
        check_pairing(sink, driver, origin)
    finally:
        feeder.close()


def check_pairing(sink, driver, origin: str) -> None:
    driver.get(f"{origin}/status.json")
    assert "token required" in driver.find_element("tag name", "body").text  # 401
    driver.get(sink._server.pair_link.replace(f"https://127.0.0.1:{sink.port}", origin))
    wait_for(driver, lambda d: d.current_url == f"{origin}/", "no redirect to the view")
    assert "secret" not in driver.current_url
    status = driver.execute_script(
        "return fetch('/status.json').then((r) => r.status)")  # the cookie, no token
    assert status == 200
    cookies = {c["name"]: c for c in driver.get_cookies()}
    cookie = cookies["nerve_edge_pair"]
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def refused(driver, url: str) -> str:
    """The browser's certificate error page for ``url`` (its text), or fail."""
    driver.get(url)
    text = driver.execute_script("return document.body ? document.body.innerText : ''")
    assert driver.execute_script("return window.nerveEdge === undefined")
    return text + driver.page_source


def test_a_name_the_certificate_does_not_cover_is_refused(board):
    sink, driver, _ = board
    page = refused(driver, f"https://{OTHER_NAME}:{sink.port}/app/")
    assert "ERR_CERT_COMMON_NAME_INVALID" in page


def serve_pem(sink, tmp_path: Path, cert, key) -> None:
    """Make the running view present ``cert`` (with ``key``) from its next connection on."""
    from cryptography.hazmat.primitives.serialization import Encoding

    (tmp_path / "other.crt").write_bytes(cert.public_bytes(Encoding.PEM))
    (tmp_path / "other.key").write_bytes(certs._key_pem(key))
    sink._server.tls = server_context(tmp_path / "other.crt", tmp_path / "other.key")


def board_ca(sink):
    folder = sink.security.ca.parent
    return certs._load(folder / certs.CA_FILE, folder / certs.CA_KEY_FILE)


def test_an_expired_certificate_is_refused(board, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    sink, driver, origin = board
    ca = board_ca(sink)
    cert, key = certs._make_server(*ca, [board_name()])
    # Same CA, same names, but its validity ended 10 minutes ago (inside the CA's own).
    now = dt.datetime.now(dt.timezone.utc)
    expired = x509.CertificateBuilder(
        issuer_name=cert.issuer, subject_name=cert.subject, public_key=cert.public_key(),
        serial_number=cert.serial_number + 1, not_valid_before=now - dt.timedelta(minutes=50),
        not_valid_after=now - dt.timedelta(minutes=10),
        extensions=list(cert.extensions)).sign(ca[1], hashes.SHA256())
    serve_pem(sink, tmp_path, expired, key)
    page = refused(driver, f"{origin}/app/")
    assert "ERR_CERT_DATE_INVALID" in page, re.findall(r"ERR_[A-Z_]+", page)


def test_the_board_ca_cannot_vouch_for_another_site(board, tmp_path):
    """The name constraint at work: a certificate for a public name, signed with the board's
    CA key (as a thief of the board could), is refused by the tablet that trusts the CA."""
    sink, driver, _ = board
    serve_pem(sink, tmp_path, *certs._make_server(*board_ca(sink), [PUBLIC_NAME]))
    page = refused(driver, f"https://{PUBLIC_NAME}:{sink.port}/app/")
    assert re.search(r"ERR_CERT_[A-Z_]+", page), page[:500]
    assert "ERR_CERT_INVALID" in page, re.findall(r"ERR_[A-Z_]+", page)  # not the name: the
    # certificate names www.example.com; what fails is the CA's constraint
