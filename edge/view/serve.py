"""Clinic web view: the live overlay on a tablet or phone browser (``edge-run --serve``).

http.server + threads: MJPEG in an ``<img>`` plays in every browser with no script library,
offline. How it stays off the device's back: edge/view/hub.py (one shared encoder, newest
frame only, at most ENCODE_DUTY of one core); each viewer has its own thread and a send
timeout, so a slow or stalled client only hurts itself; at most ``max_viewers`` streams (503).

Access: 127.0.0.1:8080 by default, plain HTTP there. Other interfaces only when named, and
there HTTPS (edge/view/tls.py: a local CA made once, or the hospital's certificate), a token
of at least MIN_TOKEN_CHARS or a paired tablet's cookie (edge/view/pairing.py), checked before
routing (edge/view/handler.py), and an mDNS name (edge/view/mdns.py). Only fixed routes exist
and nothing is read from disk on request. ``/healthz`` and ``/metrics`` (edge/view/metrics.py)
let a fleet's Prometheus watch the board. See docs/serve.md.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import secrets
import socket
import threading
from collections.abc import Callable
from importlib import resources

from edge.errors import UserInputError
from edge.log import note, warn
from edge.types import FrameResult
from edge.view import metrics as serve_metrics
from edge.view.handler import _Handler, _Server, _Server6
from edge.view.https import WILDCARD_HOSTS, Security, banner, base_url, lan_address, resolve
from edge.view.hub import FrameHub
from edge.view.mdns import Announcer, board_name
from edge.view.tls import INSECURE_WARNING, ServeOptions

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_MAX_VIEWERS = 4
DEFAULT_ALPHA = 0.4  # overlay fill opacity when the viewer does not ask for one
SHUTDOWN_JOIN_S = 2.0  # how long close() waits for the server thread
ACCEPT_POLL_S = 0.1  # the accept loop checks for shutdown this often (close() latency)
RENEW_CHECK_S = 6 * 3600.0  # a generated certificate is checked (and re-issued when due) this often
TOKEN_BYTES = 16  # secrets.token_urlsafe(16): 22 characters, 128 bits
# A token chosen by hand beyond loopback must have at least this many characters: 16 random
# URL-safe ones are ~96 bits; "a" or "1234" falls to the first guesses of anyone on the Wi-Fi.
MIN_TOKEN_CHARS = 16
PAGE_RESOURCE = "static/index.html"

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

def _listen(spec: str, host: str, port: int) -> _Server:
    server_cls = _Server6 if ":" in host else _Server
    try:
        return server_cls((host, port), _Handler)
    except OSError as err:
        raise UserInputError(bind_error_message(spec, host, port, err)) from None


def _check_values(alpha: float, max_viewers: int) -> None:
    if max_viewers < 1:
        raise UserInputError(f"--serve-max-viewers {max_viewers}: must be at least 1")
    if not 0.0 <= alpha <= 1.0:
        raise UserInputError(f"overlay alpha {alpha}: must be from 0 to 1")


def _mdns_addresses(host: str) -> list[str]:
    if host in WILDCARD_HOSTS:
        return [a for a in (lan_address(),) if a]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return [a for a in (lan_address(),) if a]  # a name: announce the board's address
    return [host]


class ServeSink:
    """A Sink that serves the latest result to browsers. Create with ``from_spec``."""

    needs_overlay = False  # overlays are drawn per viewer opacity in the HTTP threads

    def __init__(self, server: _Server, host: str, token: str | None,
                 security: Security) -> None:
        self._server = server
        self.host = host
        self.port = int(server.server_address[1])
        self.token = token
        self.security = security
        self.url = base_url(security, self.port) + (f"?token={token}" if token else "")
        self._hub = server.hub
        self._announcer: Announcer | None = None
        self._thread = threading.Thread(target=server.serve_forever, name="serve",
                                        kwargs={"poll_interval": ACCEPT_POLL_S}, daemon=True)
        self._thread.start()
        self._closed = False
        self._stop = threading.Event()
        if security.renew is not None:  # a generated certificate: re-issued when due
            threading.Thread(target=self._renew_when_due, name="serve-renew",
                             daemon=True).start()

    @classmethod
    def from_spec(cls, spec: str, token: str | None = None, alpha: float = DEFAULT_ALPHA,
                  max_viewers: int = DEFAULT_MAX_VIEWERS,
                  log: Callable[[str], None] | None = print,
                  model: dict[str, str] | None = None,
                  warnings: list[str] | None = None,
                  stall_after_s: float = serve_metrics.STALL_AFTER_S,
                  options: ServeOptions | None = None) -> ServeSink:
        """Listen now (so a busy port or a bad certificate fails before the first frame) and
        start serving.

        A token is generated when listening beyond loopback and none is given; a given
        token is enforced on any address (beyond loopback it needs MIN_TOKEN_CHARS).
        ``log`` gets the URL to open, the CA fingerprint and the pairing QR code (None:
        silent). ``model``: labels of /metrics' model_info (sha256, name, version,
        backend); ``warnings``: the model's, in /status.json's model_warnings.
        ``stall_after_s``: /healthz answers 503 when no frame came for longer than this.
        ``options``: HTTPS, pairing and mDNS (edge.view.tls.ServeOptions; default: HTTPS
        with a generated certificate beyond loopback, mDNS on there).
        """
        host, port = parse_host_port(spec)
        _check_values(alpha, max_viewers)
        check_token(token, host)
        options, loopback = options or ServeOptions(), is_loopback(host)
        if token is None and not loopback:
            token = secrets.token_urlsafe(TOKEN_BYTES)
        security = resolve(host, loopback, options)
        if security.context is None and not loopback:
            note(INSECURE_WARNING)
        server = _listen(spec, host, port)
        server.hub, server.token, server.alpha = FrameHub(max_viewers, stall_after_s), token, alpha
        server.hub.model = dict(model or {})
        server.hub.model_warnings = list(warnings or [])
        server.page = _load_page()
        cls._secure(server, security)
        sink = cls(server, host, token, security)
        if options.mdns and not loopback:
            sink._announce()
        if log is not None:
            sink._say(log, loopback)
        return sink

    @staticmethod
    def _secure(server: _Server, security: Security) -> None:
        server.tls, server.pair_secret = security.context, security.pair_secret
        server.ca_pem = security.ca.read_bytes() if security.ca else None
        if security.pair_secret:
            from edge.view.pairing import pair_url

            port = int(server.server_address[1])
            server.pair_link = pair_url(base_url(security, port), security.pair_secret)

    def _renew_when_due(self) -> None:
        while not self._stop.wait(RENEW_CHECK_S):
            try:
                self.security.renew()
            except Exception as e:  # noqa: BLE001  the served certificate stays; say why
                warn(f"serve: could not renew the certificate ({e}); it stays until it "
                     "expires: restart edge-run to try again")

    def _announce(self) -> None:
        addresses = _mdns_addresses(self.host)
        if addresses:
            self._announcer = Announcer(board_name(), addresses, self.port,
                                        self.security.context is not None, note,
                                        only_these=self.host not in WILDCARD_HOSTS)

    def _say(self, log: Callable[[str], None], loopback: bool) -> None:
        where = "this device only" if loopback else "open it on the same network"
        log(f"serve: clinic view at {self.url} ({where}; listening on {self.host}:{self.port})")
        for line in banner(self.security, self.port):
            log(line)

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
        self._stop.set()
        if self._announcer is not None:
            self._announcer.close()
        self._hub.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(SHUTDOWN_JOIN_S)
