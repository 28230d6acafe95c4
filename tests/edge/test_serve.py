"""The clinic web view (edge/view/serve.py): routes, stream, token, bad input, and that viewers can
never slow the device loop. Loopback only; port 0 lets the OS pick a free port."""

from __future__ import annotations

import errno
import http.client
import json
import re
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import UserInputError
from edge.types import FrameResult
from edge.view import handler, serve
from edge.view.serve import ServeSink, bind_error_message, is_loopback, parse_host_port
from edge.view.tls import ServeOptions

FRAME_HW = (420, 580)  # the phantom's and the Kaggle set's frame size (H, W)
FEED_PERIOD_S = 0.02  # the fake loop's frame period (50 FPS)
WAIT_S = 10.0  # generous upper bound for anything that should happen "soon"
STAGES = {"capture": 1.0, "preprocess": 0.5, "inference": 6.0, "postprocess": 0.4, "render": 0.2}
REPO = Path(__file__).resolve().parents[2]
LAN = ServeOptions(mdns=False)  # beyond loopback (HTTPS by default) with no mDNS announcement


def make_result(index: int, hw: tuple[int, int] = FRAME_HW) -> FrameResult:
    """A gray gradient frame with a round 'nerve' that moves one pixel per frame."""
    h, w = hw
    frame = np.repeat(np.linspace(30, 120, w, dtype=np.uint8)[None, :, None], h, axis=0)
    frame = np.repeat(frame, 3, axis=2).copy()
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, (w // 3 + index % 100, h // 2), 40, 255, -1)
    return FrameResult(frame_index=index, name=f"{index:06d}", frame=frame, mask=mask,
                       detected=True, area_px=int((mask > 0).sum()), fps=42.5,
                       stage_ms=dict(STAGES))


class Feeder:
    """Stands in for the device loop: writes a new result every FEED_PERIOD_S."""

    def __init__(self, sink: ServeSink) -> None:
        self.sink, self.stop = sink, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        index = 0
        while not self.stop.is_set():
            self.sink.write(make_result(index))
            index += 1
            self.stop.wait(FEED_PERIOD_S)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


@pytest.fixture
def served():
    sink = ServeSink.from_spec("127.0.0.1:0", log=None)
    feeder = Feeder(sink)
    yield sink
    feeder.close()
    sink.close()


def _get(conn: http.client.HTTPConnection, path: str, headers: dict | None):
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def request(port: int, path: str, headers: dict | None = None):
    """GET a finite route on loopback -> (status, headers, body)."""
    return _get(http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S), path, headers)


def secure_request(sink: ServeSink, path: str, headers: dict | None = None):
    """GET over HTTPS on loopback, trusting the sink's own CA -> (status, headers, body)."""
    ctx = ssl.create_default_context(cafile=str(sink.security.ca))
    return _get(http.client.HTTPSConnection("127.0.0.1", sink.port, timeout=WAIT_S,
                                            context=ctx), path, headers)


def open_stream(port: int, path: str = "/stream.mjpg"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
    conn.request("GET", path)
    return conn, conn.getresponse()


def close_stream(conn, resp) -> None:
    resp.close()  # the response holds the socket open; closing only conn would not end it
    conn.close()


def read_part(resp, boundary: str) -> bytes:
    """One JPEG from a multipart/x-mixed-replace body, found by its boundary line."""
    while resp.readline().strip() != f"--{boundary}".encode():
        pass
    length = None
    while (line := resp.readline().strip()) != b"":
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    assert length is not None, "part without Content-Length"
    return resp.read(length)


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable image"
    return image


def wait_until(predicate, timeout_s: float = WAIT_S) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


# ---------------------------------------------------------------- spec and address parsing

@pytest.mark.parametrize("spec, expected", [
    ("8080", ("127.0.0.1", 8080)),
    (":9000", ("127.0.0.1", 9000)),
    ("0.0.0.0:8080", ("0.0.0.0", 8080)),
    ("localhost:0", ("localhost", 0)),
    ("[::1]:8081", ("::1", 8081)),
    (" 127.0.0.1:65535 ", ("127.0.0.1", 65535)),
])
def test_parse_host_port_accepts(spec, expected):
    assert parse_host_port(spec) == expected


@pytest.mark.parametrize("spec", ["", "abc", "host:", "8080:host", "127.0.0.1:99999",
                                  "localhost:80a", "a b:80", "1:2:3", "[::1]"])
def test_parse_host_port_refuses_with_one_line(spec):
    with pytest.raises(UserInputError, match=r"HOST:\]PORT|above 65535") as info:
        parse_host_port(spec)
    assert "\n" not in str(info.value)


def test_loopback_detection():
    assert all(map(is_loopback, ["127.0.0.1", "127.3.2.1", "localhost", "::1"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.20", "clinic-box"]))


def test_bind_error_messages_name_the_fix():
    assert "0.0.0.0" in bind_error_message("x:1", "x", 1, OSError(errno.EADDRNOTAVAIL, "no"))
    assert "1024" in bind_error_message("80", "127.0.0.1", 80, OSError(errno.EACCES, "denied"))


def test_port_in_use_is_a_user_error():
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(UserInputError, match=f"port {port} is already in use"):
            ServeSink.from_spec(f"127.0.0.1:{port}", log=None)


@pytest.mark.parametrize("kwargs", [{"max_viewers": 0}, {"alpha": 1.5}, {"token": " "}])
def test_bad_options_are_user_errors(kwargs):
    with pytest.raises(UserInputError):
        ServeSink.from_spec("127.0.0.1:0", log=None, **kwargs)


def test_close_frees_the_port_and_is_idempotent():
    sink = ServeSink.from_spec("127.0.0.1:0", log=None)
    port = sink.port
    sink.close()
    sink.close()
    again = ServeSink.from_spec(f"127.0.0.1:{port}", log=None)
    again.close()


# ---------------------------------------------------------------- routes

def test_page_is_self_contained(served):
    status, headers, body = request(served.port, "/")
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert 'id="video"' in page and "stream.mjpg" in page and "status.json" in page
    external = r"https?:|(?:src|href)\s*=\s*[\"']?//|@import|url\(\s*[\"']?(?:https?:)?//"
    assert re.search(external, page, re.I) is None
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert served.needs_overlay is False


def test_status_json_has_fps_and_detection(served):
    assert wait_until(lambda: served._hub.latest()[0] > 0)
    status, headers, body = request(served.port, "/status.json")
    data = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert data["fps"] == pytest.approx(42.5) and data["stage_ms"] == STAGES
    assert data["detected"] is True and data["area_px"] > 4000
    assert isinstance(data["frame_index"], int)
    assert (data["width"], data["height"]) == (FRAME_HW[1], FRAME_HW[0])
    assert data["viewers"] == 0 and data["max_viewers"] == serve.DEFAULT_MAX_VIEWERS
    assert data["uptime_s"] >= 0


def test_stream_yields_new_decodable_frames_of_frame_size(served):
    conn, resp = open_stream(served.port)
    try:
        ctype = resp.getheader("Content-Type")
        boundary = re.search(r"boundary=(\S+)", ctype).group(1)
        assert resp.status == 200 and ctype.startswith("multipart/x-mixed-replace")
        parts = [read_part(resp, boundary) for _ in range(3)]
        assert all(decode(p).shape == (*FRAME_HW, 3) for p in parts)
        assert len(set(parts)) == 3, "each part should be a newer frame"
        assert served.viewers == 1
    finally:
        close_stream(conn, resp)


def test_frame_and_snapshot_follow_the_requested_opacity(served):
    assert wait_until(lambda: served._hub.latest()[0] > 0)
    status, headers, body = request(served.port, "/frame.jpg")
    assert status == 200 and decode(body).shape == (*FRAME_HW, 3)
    clear = decode(request(served.port, "/snapshot.png?alpha=0")[2]).astype(int)
    solid_status, solid_headers, solid_body = request(served.port, "/snapshot.png?alpha=1")
    assert solid_status == 200 and solid_headers["Content-Type"] == "image/png"
    solid = decode(solid_body).astype(int)
    assert clear.shape == solid.shape == (*FRAME_HW, 3)
    assert np.abs(clear - solid).max() > 50, "opacity 0 and 1 should look different"


@pytest.mark.parametrize("query", ["alpha=2", "alpha=-0.1", "alpha=abc"])
def test_bad_alpha_is_400(served, query):
    assert request(served.port, f"/frame.jpg?{query}")[0] == 400


@pytest.mark.parametrize("path", ["/../etc/passwd", "/index.html", "/static/index.html",
                                  "/edge/serve.py", "/stream.mjpg/", "/%2e%2e/etc/passwd", "/?/"])
def test_nothing_outside_the_fixed_routes(served, path):
    status = request(served.port, path)[0]
    assert status == (200 if path == "/?/" else 404)


def test_no_frame_yet_is_503_not_an_error():
    sink = ServeSink.from_spec("127.0.0.1:0", log=None)
    try:
        assert request(sink.port, "/frame.jpg")[0] == 503
        assert json.loads(request(sink.port, "/status.json")[2])["frame_index"] is None
    finally:
        sink.close()


# ---------------------------------------------------------------- access

def test_token_required_beyond_loopback():
    lines: list[str] = []
    sink = ServeSink.from_spec("0.0.0.0:0", log=lines.append, options=LAN)
    feeder = Feeder(sink)
    try:
        token = sink.token
        assert token and len(token) >= 20
        assert f"?token={token}" in lines[0] and f":{sink.port}/" in lines[0]
        for path in ["/", "/status.json", "/stream.mjpg", "/frame.jpg", "/snapshot.png"]:
            assert secure_request(sink, path)[0] == 401, path
        assert secure_request(sink, "/status.json?token=wrong")[0] == 401
        bad_bearer = {"Authorization": "Bearer wrong"}
        assert secure_request(sink, "/status.json", bad_bearer)[0] == 401
        assert secure_request(sink, f"/status.json?token={token}")[0] == 200
        assert secure_request(sink, f"/?token={token}")[0] == 200
        bearer = {"Authorization": f"Bearer {token}"}
        assert secure_request(sink, "/status.json", bearer)[0] == 200
    finally:
        feeder.close()
        sink.close()


def test_loopback_needs_no_token_but_a_given_one_is_enforced():
    open_sink = ServeSink.from_spec("127.0.0.1:0", log=None)
    locked = ServeSink.from_spec("127.0.0.1:0", token="s3cret", log=None)
    try:
        assert open_sink.token is None and "token" not in open_sink.url
        assert request(open_sink.port, "/status.json")[0] == 200
        assert request(locked.port, "/status.json")[0] == 401
        assert request(locked.port, "/status.json?token=s3cret")[0] == 200
    finally:
        open_sink.close()
        locked.close()


GOOD_TOKEN = "s3cret-long-enough-1234"


@pytest.fixture
def guarded():
    """A server beyond loopback with a fixed token, and frames flowing."""
    sink = ServeSink.from_spec("0.0.0.0:0", token=GOOD_TOKEN, log=None, options=LAN)
    feeder = Feeder(sink)
    yield sink
    feeder.close()
    sink.close()


@pytest.mark.parametrize("token", ["a", "1234", "x" * (serve.MIN_TOKEN_CHARS - 1)])
def test_short_token_refused_beyond_loopback(token):
    with pytest.raises(UserInputError, match=f"shorter than {serve.MIN_TOKEN_CHARS}") as info:
        ServeSink.from_spec("0.0.0.0:0", token=token, log=None, options=LAN)
    assert "\n" not in str(info.value)


def test_token_of_minimum_length_accepted_beyond_loopback():
    sink = ServeSink.from_spec("0.0.0.0:0", token="x" * serve.MIN_TOKEN_CHARS, log=None,
                                options=LAN)
    sink.close()


def test_edge_run_refuses_a_short_token_with_exit_2_and_one_line():
    cmd = [sys.executable, "-m", "edge.cli", "--source", "phantom", "--headless",
           "--max-frames", "2", "--serve", "0.0.0.0:0", "--serve-token", "a", "--no-mdns"]
    got = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert got.returncode == 2, got.stderr
    errors = [line for line in got.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "--serve-token" in errors[0] and "Traceback" not in got.stderr


@pytest.mark.parametrize("path, headers", [
    (f"/status.json?token=bad&token={GOOD_TOKEN}", {}),
    (f"/status.json?token={GOOD_TOKEN}&token=bad", {}),
    (f"/status.json?token={GOOD_TOKEN}&token={GOOD_TOKEN}", {}),
    ("/status.json?token=bad", {"Authorization": f"Bearer {GOOD_TOKEN}"}),
])
def test_one_token_per_request(guarded, path, headers):
    status, _, body = secure_request(guarded, path, headers)
    assert status == 400 and b"once" in body


@pytest.mark.parametrize("path", ["/nope", "/index.html", "/../etc/passwd", "/stream.mjpg/",
                                  "/metrics/x", "/favicon.ico"])
def test_unknown_routes_are_401_without_a_token_and_404_with_it(guarded, path):
    assert secure_request(guarded, path)[0] == 401
    assert secure_request(guarded, f"{path}?token={GOOD_TOKEN}")[0] == 404


def test_public_page_assets_need_no_token_but_nothing_else_does(guarded, monkeypatch):
    def asset(handler, query):
        handler._send(200, b"console.log(1)", "text/javascript")

    monkeypatch.setitem(handler._ROUTES, "/assets/", asset)
    monkeypatch.setattr(handler, "PUBLIC_ROUTES", {"/assets/"})
    assert secure_request(guarded, "/assets/app.js")[0] == 200
    assert secure_request(guarded, "/assets/")[0] == 200
    for path in ["/status.json", "/", "/assets/../status.json", "/assetsx", "/frame.jpg"]:
        assert secure_request(guarded, path)[0] == 401, path
    assert secure_request(guarded, f"/assets/../x.js?token={GOOD_TOKEN}")[0] == 404


def test_viewers_are_bounded():
    sink = ServeSink.from_spec("127.0.0.1:0", max_viewers=1, log=None)
    feeder = Feeder(sink)
    try:
        first, resp = open_stream(sink.port)
        assert resp.status == 200
        read_part(resp, handler.BOUNDARY)
        status, headers, body = request(sink.port, "/stream.mjpg")
        assert status == 503 and b"too many viewers" in body and "Retry-After" in headers
        close_stream(first, resp)
        assert wait_until(lambda: sink.viewers == 0), "a closed viewer should free its slot"
        again, resp = open_stream(sink.port)
        assert resp.status == 200
        close_stream(again, resp)
    finally:
        feeder.close()
        sink.close()


# ---------------------------------------------------------------- never slow the device

def timed_loop(sink: ServeSink, results: list[FrameResult], writes: int = 300) -> float:
    """A stand-in device loop: some OpenCV work per frame, then write()."""
    started = time.perf_counter()
    for i in range(writes):
        result = results[i % len(results)]
        cv2.GaussianBlur(result.frame, (9, 9), 0)
        sink.write(result)
    return time.perf_counter() - started


def stalled_client(port: int) -> socket.socket:
    """Asks for the stream with a tiny receive buffer, then never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
    return sock


def test_stalled_client_does_not_slow_the_loop_and_is_dropped(monkeypatch):
    monkeypatch.setattr(handler._Handler, "timeout", 1.0)  # drop stalled clients after 1 s
    sink = ServeSink.from_spec("127.0.0.1:0", log=None)
    results = [make_result(i) for i in range(20)]
    try:
        timed_loop(sink, results, 30)  # warm-up
        alone = timed_loop(sink, results)
        stuck = stalled_client(sink.port)
        assert wait_until(lambda: sink.viewers == 1)
        with_stalled = timed_loop(sink, results)
        assert with_stalled < 3 * alone + 0.05, (alone, with_stalled)
        # keep frames coming: the stalled viewer's send times out and its slot is freed
        feeder = Feeder(sink)
        assert wait_until(lambda: sink.viewers == 0), "a stalled viewer should be dropped"
        conn, resp = open_stream(sink.port)
        assert decode(read_part(resp, handler.BOUNDARY)).shape == (*FRAME_HW, 3)
        close_stream(conn, resp)
        feeder.close()
        stuck.close()
    finally:
        sink.close()


def test_client_disconnect_mid_stream_is_harmless(served, capfd):
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", served.port), timeout=WAIT_S)
        sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
        received = b""
        while b"image/jpeg" not in received:
            received += sock.recv(4096)
        # reset (RST) rather than a polite close: the harshest way a phone can leave
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    assert wait_until(lambda: served.viewers == 0)
    conn, resp = open_stream(served.port)
    assert decode(read_part(resp, handler.BOUNDARY)).shape == (*FRAME_HW, 3)
    close_stream(conn, resp)
    assert "Traceback" not in capfd.readouterr().err


# ---------------------------------------------------------------- end to end with edge-run

def cli_supports_serve() -> bool:
    cli = REPO / "edge" / "cli.py"
    return cli.exists() and "--serve" in cli.read_text()


@pytest.mark.skipif(not cli_supports_serve(), reason="edge.cli has no --serve flag yet")
def test_edge_run_serves_the_phantom(tmp_path):
    with socket.socket() as probe:  # a free loopback port for the child to listen on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [sys.executable, "-m", "edge.cli", "--source", "phantom", "--headless",
           "--serve", f"127.0.0.1:{port}", "--max-frames", "400",
           "--report", str(tmp_path / "run.json")]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        def has_frames() -> bool:  # the rolling FPS needs a few frames before it is > 0
            try:
                return json.loads(request(port, "/status.json")[2])["fps"] not in (None, 0.0)
            except OSError:
                return False

        assert wait_until(has_frames, 60.0), "edge-run never served frames"
        status = json.loads(request(port, "/status.json")[2])
        assert status["fps"] > 0 and isinstance(status["detected"], bool)
        assert {"inference", "postprocess"} <= set(status["stage_ms"])
        code, _, body = request(port, "/frame.jpg")
        assert code == 200 and decode(body).shape[:2] == (status["height"], status["width"])
        assert request(port, "/healthz")[0] == 200
        metrics = request(port, "/metrics")[2].decode()
        output = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0 and "Traceback" not in output, output
    assert f"http://127.0.0.1:{port}/" in output, "the URL to open should be printed"
    sha = json.loads((tmp_path / "run.json").read_text())["model_sha256"]
    assert f'sha256="{sha}"' in metrics, "/metrics' model_info should name the running model"
