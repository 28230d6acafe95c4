"""The web view's HTTP side: the server (TLS handshakes in the viewer's own thread), the
request handler, its fixed routes and the access check that runs before routing.

Beyond loopback every request needs the token (query ``?token=`` or ``Authorization: Bearer``,
exactly one per request) or, over HTTPS, a paired tablet's cookie (edge/view/pairing.py);
without either every path, known or not, is 401, except PUBLIC_ROUTES, ``/pair`` (which
checks its own secret) and the /app/ runner's public files (edge/view/web/server.py).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import socket
import socketserver
import ssl
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from edge.log import note
from edge.view import metrics as serve_metrics
from edge.view import pairing
from edge.view.hub import FrameHub, alpha_key
from edge.view.tls import HSTS
from edge.view.web import server as web_app

SEND_TIMEOUT_S = 5.0  # a client that accepts no data for this long is dropped
HANDSHAKE_TIMEOUT_S = 5.0  # a TLS client that stalls its handshake is dropped after this
# Per-viewer kernel send buffer. Without a cap Linux grows it to megabytes, so a stalled
# client would swallow ~10 s of frames before its send blocks and times out; 256 kB holds
# a few frames, still plenty for Wi-Fi (throughput ~ buffer / round trip).
STREAM_SNDBUF_BYTES = 256 * 1024
FRAME_WAIT_S = 0.5  # a viewer thread wakes this often to notice shutdown
BOUNDARY = "nerveframe"
RETRY_AFTER_S = 5  # told to a viewer turned away because all slots are taken
CA_TYPE = "application/x-x509-ca-cert"  # what phones install as a CA when they download it


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck viewer never keeps the process alive
    hub: FrameHub
    token: str | None
    alpha: float
    page: bytes
    tls: ssl.SSLContext | None = None  # None: plain HTTP
    pair_secret: str | None = None  # HTTPS only: the pairing cookie's secret
    ca_pem: bytes | None = None  # the generated CA (--tls auto), served at /ca.crt
    pair_link: str | None = None  # the URL in the QR code

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can hang
        # for seconds on a clinic network with no DNS; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address) -> None:
        """The TLS handshake happens here, in the client's own thread: a slow or hostile
        client never holds up the accept loop, and a failed handshake is just dropped."""
        if self.tls is None:
            return super().finish_request(request, client_address)
        request.settimeout(HANDSHAKE_TIMEOUT_S)
        conn = self.tls.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        try:
            try:
                conn.do_handshake()
            except (ssl.SSLError, OSError):
                return None  # e.g. a browser that does not trust the CA yet: nothing to serve
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            conn.close()

    def handle_error(self, request, client_address) -> None:
        # A viewer that vanishes mid-request is normal on Wi-Fi; anything else gets one line.
        err = sys.exc_info()[1]
        if not isinstance(err, (ConnectionError, TimeoutError, ssl.SSLError)):
            note(f"serve: error with client {client_address[0]}: {err!r}")


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
            if url.path == pairing.PAIR_PATH and self.server.pair_secret:
                return self.pair(query)  # authorized by its own secret
            if url.path == pairing.QR_PATH:
                return self.pair_png(query)  # this board's own screen, or the token
            # Auth before routing: without the token, a known and an unknown path look alike.
            if not (is_public(url.path) or self._authorized(query)):
                self._send(401, b"token required: open the URL printed by edge-run "
                                b"(https://HOST:PORT/?token=...) or pair this device by its "
                                b"QR code\n", "text/plain; charset=utf-8",
                           {"WWW-Authenticate": "Bearer"})
                return
            route = find_route(url.path)
            if route is None:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")
            else:
                route(self, query)
        except _BadRequest as err:
            self._send(400, f"{err}\n".encode(), "text/plain; charset=utf-8")
        except (ConnectionError, TimeoutError, ssl.SSLError):
            self.close_connection = True  # the client left or stalled: drop it, nothing else

    def _given_tokens(self, query: dict[str, list[str]]) -> list[str]:
        """The tokens in the request. Several are a bad request, not several guesses."""
        given = [*query.get("token", [])]
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given.append(auth[len("Bearer "):].strip())
        if len(given) > 1:
            raise _BadRequest("give the token once per request (?token= or a Bearer header)")
        return given

    def _token_ok(self, query: dict[str, list[str]]) -> bool:
        token, given = self.server.token, self._given_tokens(query)
        if token is None:
            return True
        return bool(given) and hmac.compare_digest(given[0].encode(), token.encode())

    def _authorized(self, query: dict[str, list[str]]) -> bool:
        """The token, or (over HTTPS) a paired device's cookie."""
        if self._token_ok(query):
            return True
        secret = self.server.pair_secret
        return secret is not None and pairing.cookie_ok(self.headers.get("Cookie"), secret)

    def _from_loopback(self) -> bool:
        host = self.client_address[0].removeprefix("::ffff:")
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def security_headers(self) -> dict[str, str]:
        """Sent with every answer over HTTPS (HSTS), also by the /app/ site. Not to a browser
        that named the host "localhost": HSTS holds for every port of a name, and this
        device's plain loopback view (make run, 127.0.0.1:8080) must keep working there."""
        if self.server.tls is None:
            return {}
        host = urlsplit("//" + self.headers.get("Host", "")).hostname or ""
        if host == "localhost" or host.endswith(".localhost"):
            return {}
        return {"Strict-Transport-Security": HSTS}

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
        for name, value in {**self.security_headers(), **(extra or {})}.items():
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

    def ca_cert(self, query) -> None:
        if self.server.ca_pem is None:  # a hospital's own certificate: its CA is theirs
            return self._send(404, b"not found\n", "text/plain; charset=utf-8")
        self._send(200, self.server.ca_pem, CA_TYPE,
                   {"Content-Disposition": 'attachment; filename="nerve-edge-ca.crt"'})

    def pair(self, query) -> None:
        """The QR code's link: a cookie for this device, then the view without the secret."""
        secret = self.server.pair_secret
        if not pairing.secret_ok(query.get("secret", []), secret):
            return self._send(401, b"pairing code not valid (renewed with --serve-unpair?): "
                                   b"scan the code edge-run shows now\n",
                              "text/plain; charset=utf-8")
        self._send(303, b"paired\n", "text/plain; charset=utf-8",
                   {"Set-Cookie": pairing.set_cookie_header(secret), "Location": "/"})

    def pair_png(self, query) -> None:
        """The QR code as an image: for this device's own screen, or with the token."""
        link = self.server.pair_link
        if not (self._from_loopback() or (self._given_tokens(query) and self._token_ok(query))):
            return self._send(401, b"the pairing code is shown on the board itself or "
                                   b"with the token\n", "text/plain; charset=utf-8",
                              {"WWW-Authenticate": "Bearer"})
        if link is None:
            return self._send(404, b"no pairing over plain HTTP\n", "text/plain; charset=utf-8")
        self._send(200, pairing.qr_png(link), "image/png")

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
    "/ca.crt": _Handler.ca_cert,
}
# Routes (keys of _ROUTES) served without a token: only static page assets that carry no
# patient data and no device state (scripts, styles, a service worker). Never frames or status.
# /ca.crt: the CA certificate is public by nature (a tablet installs it before pairing).
PUBLIC_ROUTES: set[str] = {"/ca.crt"}


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

