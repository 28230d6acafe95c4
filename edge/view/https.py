"""What the web view needs before it listens: plain HTTP or TLS, the certificate (generated or
the hospital's), the pairing secret, the name shown in URLs, and the start banner's lines.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.log import note
from edge.view import certs, pairing
from edge.view.mdns import board_name
from edge.view.state import state_dir
from edge.view.tls import ServeOptions, check_own_cert, server_context

WILDCARD_HOSTS = ("0.0.0.0", "::", "")
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Security:
    """The resolved access setup of one web view."""

    context: ssl.SSLContext | None  # None: plain HTTP
    name: str  # the host shown in URLs (covered by the certificate over HTTPS)
    ca: Path | None = None  # the generated CA a tablet installs (--tls auto)
    pair_secret: str | None = None  # HTTPS only
    notes: tuple[str, ...] = ()  # e.g. "made a new local CA": said after the URL
    renew: Callable[[], None] | None = None  # re-issue a generated certificate when due

    @property
    def scheme(self) -> str:
        return "https" if self.context else "http"


def lan_address() -> str | None:
    """This board's address on its network (no packet is sent), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET: only picks the outgoing interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(n) for n in certs.PRIVATE_NETS)


def host_names(host: str, mdns: bool) -> list[str]:
    """The names a browser may use for this view, the one to show first."""
    if host not in WILDCARD_HOSTS:
        return [host]
    names = [board_name()] if mdns else []
    names += [socket.gethostname().lower(), lan_address()]
    return [n for n in dict.fromkeys(names) if n]


def _cert_names(host: str, options: ServeOptions) -> list[str]:
    """Every name and private address the generated certificate covers."""
    names = [*host_names(host, options.mdns), board_name(), socket.gethostname().lower(),
             *LOCAL_NAMES]
    keep = [n for n in names if not certs.is_ip(n) or _private(n)]
    return list(dict.fromkeys(keep))


def resolve(host: str, loopback: bool, options: ServeOptions) -> Security:
    """The access setup for a view on ``host`` (may make the CA, certificate, secret)."""
    if not options.wants_tls(loopback):
        shown = socket.gethostname() if host in WILDCARD_HOSTS else host
        return Security(None, shown)
    folder = state_dir(options.state_dir)
    secret = pairing.load_secret(folder)
    if options.cert:
        shown = check_own_cert(options.cert, options.key, host_names(host, options.mdns))
        return Security(server_context(Path(options.cert), Path(options.key)), shown,
                        None, secret)
    notes: list[str] = []
    names = _cert_names(host, options)
    files = certs.ensure_certs(folder, names, notes.append)
    context = server_context(files.cert, files.key)

    def renew() -> None:
        """A board may run for longer than its certificate: re-issue it when due (the same
        CA: tablets keep trusting it) and load it for the next handshakes."""
        fresh = certs.ensure_certs(folder, names, note)
        context.load_cert_chain(str(fresh.cert), str(fresh.key))

    return Security(context, host_names(host, options.mdns)[0], files.ca, secret,
                    tuple(notes), renew)


def base_url(security: Security, port: int) -> str:
    shown = f"[{security.name}]" if ":" in security.name else security.name
    return f"{security.scheme}://{shown}:{port}/"


def banner(security: Security, port: int) -> list[str]:
    """The start lines after the URL: the CA's fingerprint and the pairing QR code."""
    if security.context is None or security.pair_secret is None:
        return []
    root, lines = base_url(security, port), list(security.notes)
    if security.ca is not None:
        lines.append(f"serve: local CA {security.ca} SHA-256 {certs.fingerprint(security.ca)}")
        lines.append(f"serve: a new tablet installs it once from {root}ca.crt, then scans "
                     "this code (also at /pair.png on this board; docs/tablet.md):")
    else:
        lines.append("serve: pair a tablet by scanning this code (also at /pair.png on this "
                     "board; docs/tablet.md):")
    lines.append(pairing.qr_text(pairing.pair_url(root, security.pair_secret)))
    return lines
