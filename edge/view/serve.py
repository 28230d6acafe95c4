"""Clinic web view: the live overlay on a tablet or phone browser (``edge-run --serve``).

Standard library only (http.server + threads): a clinic board gets no extra dependency, and
MJPEG in an ``<img>`` plays in every browser with no script library, offline.

How it stays off the device's back:
  * The loop thread only swaps a reference to the latest FrameResult under a lock
    (``ServeSink.write``). Drawing and JPEG encoding happen in the HTTP threads, lazily,
    at most once per new frame and opacity (shared by all viewers), and at most
    STREAM_MAX_FPS times a second, one encode at a time, so viewers can never take more than
    one core from the pipeline however many there are.
  * Each viewer has its own thread, always gets the newest frame (older ones are skipped,
    never queued) and a socket send timeout: a slow or stalled client only hurts itself.
  * At most ``max_viewers`` streams at once (503 past it).

Access: 127.0.0.1:8080 by default; other interfaces only when named. Beyond loopback every
request needs a token of at least MIN_TOKEN_CHARS (query ``?token=`` or ``Authorization:
Bearer``, exactly one per request), checked before routing: without it every path, known or
not, is 401, except the routes listed in PUBLIC_ROUTES. Only the fixed routes below exist and
nothing is ever read from disk on request. ``/healthz`` and ``/metrics`` (edge/view/metrics.py)
let a fleet's Prometheus watch the board. See docs/serve.md.
"""

from __future__ import annotations

import copy
import errno
import hmac
import ipaddress
import json
import re
import secrets
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

from edge.classes import class_status
from edge.errors import UserInputError
from edge.types import FrameResult
from edge.view import metrics as serve_metrics
from edge.view.overlay import draw_overlay
from edge.view.web import server as web_app

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_MAX_VIEWERS = 4
DEFAULT_ALPHA = 0.4  # overlay fill opacity when the viewer does not ask for one
ALPHA_STEP = 0.05  # requested opacities are rounded to this, so viewers share encodes
STREAM_MAX_FPS = 25.0  # frames/s sent to viewers at most: smooth to the eye
# Drawing + JPEG encoding may use at most this share of one core (all viewers together):
# ~4 ms per 580x420 frame on a laptop core -> 25 FPS; a slow board gets fewer, the loop none.
ENCODE_DUTY = 0.10
SEND_TIMEOUT_S = 5.0  # a client that accepts no data for this long is dropped
# Per-viewer kernel send buffer. Without a cap Linux grows it to megabytes, so a stalled
# client would swallow ~10 s of frames before its send blocks and times out; 256 kB holds
# a few frames, still plenty for Wi-Fi (throughput ~ buffer / round trip).
STREAM_SNDBUF_BYTES = 256 * 1024
FRAME_WAIT_S = 0.5  # a viewer thread wakes this often to notice shutdown
SHUTDOWN_JOIN_S = 2.0  # how long close() waits for the server thread
ACCEPT_POLL_S = 0.1  # the accept loop checks for shutdown this often (close() latency)
JPEG_QUALITY = 80  # 580x420 frames: ~30-40 kB each
TOKEN_BYTES = 16  # secrets.token_urlsafe(16): 22 characters, 128 bits
# A token chosen by hand beyond loopback must have at least this many characters: 16 random
# URL-safe ones are ~96 bits; "a" or "1234" falls to the first guesses of anyone on the Wi-Fi.
MIN_TOKEN_CHARS = 16
BOUNDARY = "nerveframe"
PAGE_RESOURCE = "static/index.html"
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
RETRY_AFTER_S = 5  # told to a viewer turned away because all slots are taken

# [HOST:]PORT where HOST is a name, an IPv4 address or a bracketed IPv6 address.
_SPEC_RE = re.compile(r"^(?:(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]*):)?(?P<port>\d{1,5})$")
_SPEC_HELP = "expected [HOST:]PORT, e.g. 8080, 127.0.0.1:8080 or 0.0.0.0:8080"


def parse_host_port(spec: str) -> tuple[str, int]:
    """``"8080"`` -> ("127.0.0.1", 8080); ``"0.0.0.0:8080"``; ``"[::1]:8080"``. Port 0 = any."""
    match = _SPEC_RE.match(spec.strip()) if isinstance(spec, str) else None
    if match is None:
        raise UserInputError(f"--serve {spec!r}: {_SPEC_HELP}")
    host = (match["host"] or DEFAULT_HOST).strip("[]")
    port = int(match["port"])
    if port > 65535:
        raise UserInputError(f"--serve {spec!r}: port {port} is above 65535; {_SPEC_HELP}")
    return host, port


def is_loopback(host: str) -> bool:
    """True when only this device can reach ``host`` (no token needed there)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from the network


def bind_error_message(spec: str, host: str, port: int, err: OSError) -> str:
    """One line naming the input and the fix for a failed listen."""
    if err.errno == errno.EADDRINUSE:
        return (f"--serve {spec}: port {port} is already in use on {host}; pick another port "
                f"(e.g. --serve {host}:{port + 1}) or stop the program using it")
    if err.errno == errno.EACCES:
        return (f"--serve {spec}: not permitted to listen on port {port} (ports below 1024 "
                "need root); use a port such as 8080")
    if isinstance(err, socket.gaierror) or err.errno == errno.EADDRNOTAVAIL:
        return (f"--serve {spec}: {host!r} is not an address of this device; use 127.0.0.1 "
                "(this device only) or 0.0.0.0 (all networks)")
    return f"--serve {spec}: cannot listen on {host}:{port} ({err.strerror or err})"


def alpha_key(alpha: float) -> int:
    """Opacity in [0, 1] -> an integer step, the cache key shared by viewers."""
    return round(min(max(alpha, 0.0), 1.0) / ALPHA_STEP)


def render(result: FrameResult, key: int) -> np.ndarray:
    """The overlaid frame at opacity step ``key`` (drawn here, never in the loop thread)."""
    return draw_overlay(result.frame, result.mask, alpha=key * ALPHA_STEP,
                        classes=result.classes, class_map=result.class_map,
                        warning=result.safety_warning)


def status_of(result: FrameResult | None) -> dict:
    """The frame-dependent half of /status.json, as plain JSON types."""
    if result is None:
        return {"frame_index": None, "name": None, "fps": None, "stage_ms": {},
                "detected": None, "area_px": None, "area_mm2": None, "presence": None,
                "width": None, "height": None, "classes": {}, "safety_warning": None}
    height, width = result.frame.shape[:2]
    presence = None if result.presence is None else float(result.presence)
    return {"frame_index": int(result.frame_index), "name": str(result.name),
            "fps": float(result.fps),
            "stage_ms": {str(k): float(v) for k, v in result.stage_ms.items()},
            "detected": bool(result.detected), "area_px": int(result.area_px),
            "area_mm2": None if result.area_mm2 is None else float(result.area_mm2),
            "presence": presence, "width": int(width), "height": int(height),
            "classes": class_status(result.classes),
            "safety_warning": bool(result.safety_warning)}


@dataclass
class _Encoded:
    seq: int
    data: bytes


class FrameHub:
    """The latest result (handed over by the loop) and its encodings (made by viewers)."""

    def __init__(self, max_viewers: int,
                 stall_after_s: float = serve_metrics.STALL_AFTER_S) -> None:
        self.max_viewers = max_viewers
        self.stall_after_s = stall_after_s
        self.started = time.monotonic()
        self.closed = False
        self.model: dict[str, str] = {}  # labels of the model_info metric
        self.model_warnings: list[str] = []  # e.g. converted below the Dice floor
        self._cond = threading.Condition()  # guards the fields below
        self._counters = serve_metrics.RunCounters()
        self._latest: FrameResult | None = None
        self._seq = 0  # 0 = nothing yet; +1 per write
        self._written = 0.0
        self._viewers = 0
        self._encode_lock = threading.Lock()  # one encode at a time, see module doc
        self._cache: dict[int, _Encoded] = {}  # opacity step -> newest encode
        self._rest_until = 0.0  # time.monotonic() before which the encoder rests

    def put(self, result: FrameResult) -> None:
        """Called by the loop thread: a reference swap, a few counters and a wake-up."""
        with self._cond:
            self._counters.record(result.detected, result.stage_ms)
            self._latest = result
            self._seq += 1
            self._written = time.monotonic()
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def latest(self) -> tuple[int, FrameResult | None]:
        with self._cond:
            return self._seq, self._latest

    def wait_newer(self, seq: int, timeout_s: float) -> bool:
        """Block until a frame newer than ``seq`` exists (True) or timeout/close (False)."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > seq or self.closed, timeout_s)
            return self._seq > seq and not self.closed

    def add_viewer(self) -> bool:
        with self._cond:
            if self._viewers >= self.max_viewers:
                return False
            self._viewers += 1
            return True

    def remove_viewer(self) -> None:
        with self._cond:
            self._viewers -= 1

    def jpeg(self, key: int, newer_than: int = 0) -> tuple[int, bytes] | None:
        """The newest frame as JPEG at opacity ``key``, newer than the caller's ``newer_than``.

        One encoder for all viewers: a recent encode is reused while the encoder rests, so N
        viewers cost one encode per frame, not N. Between encodes it rests long enough that
        drawing + encoding stays under ENCODE_DUTY of one core and STREAM_MAX_FPS.
        """
        with self._encode_lock:
            seq, result = self.latest()
            if result is None:
                return None
            now, cached = time.monotonic(), self._cache.get(key)
            if cached and cached.seq > newer_than and (cached.seq == seq or now < self._rest_until):
                return cached.seq, cached.data
            time.sleep(max(0.0, self._rest_until - now))
            seq, result = self.latest()  # the newest after the rest
            started = time.monotonic()
            ok, buf = cv2.imencode(".jpg", render(result, key),
                                   [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            spent = time.monotonic() - started  # wall time: a busy device makes it rest longer
            self._rest_until = started + max(1.0 / STREAM_MAX_FPS, spent / ENCODE_DUTY)
            if not ok:
                return None
            self._cache[key] = _Encoded(seq, buf.tobytes())
            return seq, self._cache[key].data

    def png(self, key: int) -> bytes | None:
        """A lossless snapshot of the newest overlay (not cached: snapshots are rare)."""
        with self._encode_lock:
            _, result = self.latest()
            if result is None:
                return None
            ok, buf = cv2.imencode(".png", render(result, key))
            return buf.tobytes() if ok else None

    def frame_age_s(self) -> float | None:
        """Seconds since the loop last handed over a frame (None before the first)."""
        with self._cond:
            return None if self._seq == 0 else time.monotonic() - self._written

    def health(self) -> tuple[int, dict]:
        return serve_metrics.health(self.frame_age_s(), self.closed, self.stall_after_s)

    def metrics(self) -> str:
        with self._cond:  # a consistent copy; rendering happens outside the lock
            counters = copy.deepcopy(self._counters)
            result, viewers = self._latest, self._viewers
        age = self.frame_age_s()
        return serve_metrics.render_metrics(
            counters, status_of(result), self.model, time.monotonic() - self.started, age,
            self.health()[0] == 200, viewers)

    def status(self, alpha: float) -> dict:
        seq, result = self.latest()
        with self._cond:
            viewers, written = self._viewers, self._written
        now = time.monotonic()
        status = status_of(result)
        status.update({
            "frame_age_ms": None if result is None else round((now - written) * 1000.0, 1),
            "viewers": viewers, "max_viewers": self.max_viewers,
            "uptime_s": round(now - self.started, 1), "alpha_default": alpha,
            "stream_max_fps": STREAM_MAX_FPS, "model_warnings": list(self.model_warnings),
        })
        return status


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck viewer never keeps the process alive
    hub: FrameHub
    token: str | None
    alpha: float
    page: bytes

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can hang
        # for seconds on a clinic network with no DNS; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address) -> None:
        # A viewer that vanishes mid-request is normal on Wi-Fi; anything else gets one line.
        err = sys.exc_info()[1]
        if not isinstance(err, (ConnectionError, TimeoutError)):
            print(f"serve: error with client {client_address[0]}: {err!r}", file=sys.stderr)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _BadRequest(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "nerve-edge"
    sys_version = ""
    timeout = SEND_TIMEOUT_S  # per-client socket timeout: a stalled client only stalls itself

    def log_message(self, format, *args) -> None:
        pass  # one line per request would drown the runner's own output

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if web_app.serves(url.path):  # the in-browser runner: public files, see docs/tablet.md
            return web_app.handle(self, url.path)
        query = parse_qs(url.query, keep_blank_values=True)
        try:
            # Auth before routing: without the token, a known and an unknown path look alike.
            if not (is_public(url.path) or self._authorized(query)):
                self._send(401, b"token required: open the URL printed by edge-run "
                                b"(http://HOST:PORT/?token=...)\n", "text/plain; charset=utf-8",
                           {"WWW-Authenticate": "Bearer"})
                return
            route = find_route(url.path)
            if route is None:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")
            else:
                route(self, query)
        except _BadRequest as err:
            self._send(400, f"{err}\n".encode(), "text/plain; charset=utf-8")
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client left or stalled: drop it, nothing else

    def _authorized(self, query: dict[str, list[str]]) -> bool:
        """Exactly one token (query or Bearer header), equal to the server's. Several are a
        bad request, not several guesses."""
        token = self.server.token
        given = [*query.get("token", [])]
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given.append(auth[len("Bearer "):].strip())
        if len(given) > 1:
            raise _BadRequest("give the token once per request (?token= or a Bearer header)")
        if token is None:
            return True
        return bool(given) and hmac.compare_digest(given[0].encode(), token.encode())

    def _alpha_key(self, query: dict[str, list[str]]) -> int:
        raw = query.get("alpha", [None])[-1]
        if raw is None:
            return alpha_key(self.server.alpha)
        try:
            alpha = float(raw)
        except ValueError:
            raise _BadRequest(f"alpha={raw!r}: expected a number from 0 to 1") from None
        if not 0.0 <= alpha <= 1.0:
            raise _BadRequest(f"alpha={raw!r}: expected a number from 0 to 1")
        return alpha_key(alpha)

    def _headers(self, code: int, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")  # the token rides in the URL
        for name, value in (extra or {}).items():
            self.send_header(name, value)

    def _send(self, code: int, body: bytes, ctype: str,
              extra: dict[str, str] | None = None) -> None:
        self._headers(code, ctype, extra)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def healthz(self, query) -> None:
        code, body = self.server.hub.health()
        self._send(code, json.dumps(body).encode(), "application/json")

    def metrics(self, query) -> None:
        self._send(200, self.server.hub.metrics().encode(), serve_metrics.CONTENT_TYPE)

    def _no_frame(self) -> None:
        self._send(503, b"no frame yet: the pipeline has not produced one\n",
                   "text/plain; charset=utf-8", {"Retry-After": "1"})

    def page(self, query) -> None:
        # The page may only talk to this server: enforced by the browser via CSP.
        csp = ("default-src 'none'; img-src 'self' blob: data:; connect-src 'self'; "
               "style-src 'unsafe-inline'; script-src 'unsafe-inline'")
        self._send(200, self.server.page, "text/html; charset=utf-8",
                   {"Content-Security-Policy": csp})

    def status(self, query) -> None:
        body = json.dumps(self.server.hub.status(self.server.alpha)).encode()
        self._send(200, body, "application/json")

    def frame(self, query) -> None:
        got = self.server.hub.jpeg(self._alpha_key(query))
        if got is None:
            return self._no_frame()
        self._send(200, got[1], "image/jpeg")

    def snapshot(self, query) -> None:
        data = self.server.hub.png(self._alpha_key(query))
        if data is None:
            return self._no_frame()
        self._send(200, data, "image/png",
                   {"Content-Disposition": 'attachment; filename="nerve-snapshot.png"'})

    def stream(self, query) -> None:
        key, hub = self._alpha_key(query), self.server.hub
        if not hub.add_viewer():
            body = (f"too many viewers (at most {hub.max_viewers}): close another view, "
                    "or raise --serve-max-viewers\n").encode()
            return self._send(503, body, "text/plain; charset=utf-8",
                              {"Retry-After": str(RETRY_AFTER_S)})
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF_BYTES)
            self._headers(200, f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.end_headers()
            self._stream_parts(hub, key)
        finally:
            hub.remove_viewer()

    def _stream_parts(self, hub: FrameHub, key: int) -> None:
        """Send the newest frame whenever there is one; skip whatever came in between.
        The pace is the shared encoder's (FrameHub.jpeg), never the loop's."""
        sent = 0
        while not hub.closed:
            if not hub.wait_newer(sent, FRAME_WAIT_S):
                continue
            got = hub.jpeg(key, newer_than=sent)
            if got is None:
                continue
            sent, data = got
            head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n").encode()
            self.wfile.write(head + data + b"\r\n")


Route = Callable[[_Handler, dict], None]

# Exact paths; a key ending in "/" also serves every path below it (a folder of page assets).
_ROUTES: dict[str, Route] = {
    "/": _Handler.page,
    "/stream.mjpg": _Handler.stream,
    "/frame.jpg": _Handler.frame,
    "/snapshot.png": _Handler.snapshot,
    "/status.json": _Handler.status,
    "/healthz": _Handler.healthz,
    "/metrics": _Handler.metrics,
}
# Routes (keys of _ROUTES) served without a token: only static page assets that carry no
# patient data and no device state (scripts, styles, a service worker). Never frames or status.
PUBLIC_ROUTES: set[str] = set()


def _matching_key(path: str, keys) -> str | None:
    """``path`` itself, or the longest folder key ("/x/") that ``path`` lies under."""
    if path in keys:
        return path
    folders = [k for k in keys if k.endswith("/") and k != "/" and path.startswith(k)]
    return max(folders, key=len, default=None)


def find_route(path: str) -> Route | None:
    if ".." in path.split("/"):
        return None  # no route is ever reached by climbing out of a folder
    key = _matching_key(path, _ROUTES)
    return None if key is None else _ROUTES[key]


def is_public(path: str) -> bool:
    """True when ``path`` is a public page asset (no token needed, see PUBLIC_ROUTES)."""
    if ".." in path.split("/"):
        return False
    return _matching_key(path, PUBLIC_ROUTES) is not None


def check_token(token: str | None, host: str) -> None:
    """A given token: not empty; beyond loopback at least MIN_TOKEN_CHARS characters."""
    if token is None:
        return
    if not token.strip():
        raise UserInputError("--serve-token is empty: give a non-empty token or omit it")
    if len(token) < MIN_TOKEN_CHARS and not is_loopback(host):
        raise UserInputError(
            f"--serve-token is shorter than {MIN_TOKEN_CHARS} characters, the least beyond "
            f"this device: omit it to get a generated one, or make one with "
            f"python3 -c 'import secrets; print(secrets.token_urlsafe({TOKEN_BYTES}))'")


def _load_page() -> bytes:
    """The single self-contained page, packaged with edge (read once at start)."""
    return resources.files("edge.view").joinpath(PAGE_RESOURCE).read_bytes()


def _display_url(host: str, port: int, token: str | None) -> str:
    shown = socket.gethostname() if host in WILDCARD_HOSTS else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


class ServeSink:
    """A Sink that serves the latest result to browsers. Create with ``from_spec``."""

    needs_overlay = False  # overlays are drawn per viewer opacity in the HTTP threads

    def __init__(self, server: _Server, host: str, token: str | None) -> None:
        self._server = server
        self.host = host
        self.port = int(server.server_address[1])
        self.token = token
        self.url = _display_url(host, self.port, token)
        self._hub = server.hub
        self._thread = threading.Thread(target=server.serve_forever, name="serve",
                                        kwargs={"poll_interval": ACCEPT_POLL_S}, daemon=True)
        self._thread.start()
        self._closed = False

    @classmethod
    def from_spec(cls, spec: str, token: str | None = None, alpha: float = DEFAULT_ALPHA,
                  max_viewers: int = DEFAULT_MAX_VIEWERS,
                  log: Callable[[str], None] | None = print,
                  model: dict[str, str] | None = None,
                  warnings: list[str] | None = None,
                  stall_after_s: float = serve_metrics.STALL_AFTER_S) -> ServeSink:
        """Listen now (so a busy port fails before the first frame) and start serving.

        A token is generated when listening beyond loopback and none is given; a given
        token is enforced on any address (beyond loopback it needs MIN_TOKEN_CHARS).
        ``log`` gets the URL to open (None: silent). ``model``: labels of /metrics'
        model_info (sha256, name, version, backend); ``warnings``: the model's, in
        /status.json's model_warnings. ``stall_after_s``: /healthz answers
        503 when no frame came for longer than this.
        """
        host, port = parse_host_port(spec)
        if max_viewers < 1:
            raise UserInputError(f"--serve-max-viewers {max_viewers}: must be at least 1")
        if not 0.0 <= alpha <= 1.0:
            raise UserInputError(f"overlay alpha {alpha}: must be from 0 to 1")
        check_token(token, host)
        if token is None and not is_loopback(host):
            token = secrets.token_urlsafe(TOKEN_BYTES)
        server_cls = _Server6 if ":" in host else _Server
        try:
            server = server_cls((host, port), _Handler)
        except OSError as err:
            raise UserInputError(bind_error_message(spec, host, port, err)) from None
        server.hub, server.token, server.alpha = FrameHub(max_viewers, stall_after_s), token, alpha
        server.hub.model = dict(model or {})
        server.hub.model_warnings = list(warnings or [])
        server.page = _load_page()
        sink = cls(server, host, token)
        if log is not None:
            where = "this device only" if is_loopback(host) else "open it on the same network"
            log(f"serve: clinic view at {sink.url} ({where}; listening on {host}:{sink.port})")
        return sink

    @property
    def viewers(self) -> int:
        return self._hub.status(self._server.alpha)["viewers"]

    def write(self, result: FrameResult) -> None:
        """Hand over the latest result: a reference swap. The loop must not modify
        ``result``'s arrays afterwards (it makes new ones every frame)."""
        self._hub.put(result)

    def should_stop(self) -> bool:
        return False  # viewers watch; they cannot stop the device

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._hub.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(SHUTDOWN_JOIN_S)
