"""HTTPS for the web view: what ``--tls``, ``--tls-cert/--tls-key`` and ``--insecure-http``
resolve to, the certificate checks (one line and exit 2 on bad input), the server's context.

Loopback keeps plain HTTP unless ``--tls on``; beyond loopback HTTPS is the default, plain
HTTP only with ``--insecure-http`` (warned). TLS 1.2 and 1.3 only; on 1.2 only ECDHE key
exchange with AEAD ciphers (forward secrecy, no CBC, no RC4/3DES/NULL/export suites).
"""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path

from edge.errors import UserInputError

TLS_MODES = ("auto", "on")  # auto: HTTPS beyond loopback; on: HTTPS on loopback too
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
HSTS = "max-age=31536000"  # one year: a tablet that saw HTTPS never falls back to HTTP
INSECURE_WARNING = ("serve: WARNING: --insecure-http: frames, status and the token cross the "
                    "network unencrypted; anyone on it can read them (drop the flag for HTTPS)")


@dataclass(frozen=True)
class ServeOptions:
    """How the web view secures itself (edge-run's --tls ... --no-mdns; docs/serve.md).

    tls: "auto" or "on" (TLS_MODES). cert, key: a hospital's own PEM certificate and key
    (instead of the generated ones). insecure_http: plain HTTP beyond loopback. mdns: announce
    nerve-edge-HOST.local beyond loopback. state_dir: where keys and the pairing secret live
    (None: edge.view.state.state_dir()).
    """

    tls: str = "auto"
    cert: str | None = None
    key: str | None = None
    insecure_http: bool = False
    mdns: bool = True
    state_dir: str | None = None

    def __post_init__(self) -> None:
        if self.tls not in TLS_MODES:
            raise UserInputError(f"--tls {self.tls!r}: expected one of {', '.join(TLS_MODES)}")
        if (self.cert is None) != (self.key is None):
            raise UserInputError("--tls-cert and --tls-key go together: give both files "
                                 "(the certificate and its private key)")
        if self.insecure_http and (self.cert or self.tls == "on"):
            raise UserInputError("--insecure-http turns HTTPS off: drop it, or drop "
                                 "--tls on / --tls-cert")

    def wants_tls(self, loopback: bool) -> bool:
        if self.cert or self.tls == "on":
            return True
        return not loopback and not self.insecure_http


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """The server's TLS context: 1.2+, forward-secret AEAD suites, no compression."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def _read_cert(path: Path):
    from cryptography import x509

    return _read_pem(path, "--tls-cert", x509.load_pem_x509_certificate, ValueError,
                     "give a readable PEM certificate",
                     "not a PEM certificate (-----BEGIN CERTIFICATE-----); convert it with "
                     "openssl x509 -outform PEM")


def _read_key(path: Path):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return _read_pem(path, "--tls-key", lambda data: load_pem_private_key(data, password=None),
                     (ValueError, TypeError),
                     "give the certificate's private key, readable by this user",
                     "not an unencrypted PEM private key; decrypt it with openssl pkey -in "
                     "KEY -out KEY.pem")


def _read_pem(path: Path, flag: str, load, bad, unreadable_fix: str, bad_text: str):
    """``load(bytes)`` of the file; UserInputError naming ``flag``, the file and the fix when
    it cannot be read or ``load`` raises one of ``bad``."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UserInputError(f"{flag} {path}: cannot read it ({err.strerror}); "
                             f"{unreadable_fix}") from None
    try:
        return load(data)
    except bad:
        raise UserInputError(f"{flag} {path}: {bad_text}") from None


def _public_der(key) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def check_own_cert(cert_path: str, key_path: str, host_names: list[str]) -> str:
    """A hospital's certificate: readable, in date, matching its key, covering one of
    ``host_names`` (the --serve host, or this board's names for 0.0.0.0): the first it
    covers is returned (the name to show in the URL)."""
    from edge.view.certs import covered_names

    cert, key = _read_cert(Path(cert_path)), _read_key(Path(key_path))
    if _public_der(cert.public_key()) != _public_der(key.public_key()):
        raise UserInputError(f"--tls-key {key_path}: does not match --tls-cert {cert_path}; "
                             "give the key the certificate was issued for")
    now = dt.datetime.now(dt.timezone.utc)
    if cert.not_valid_after_utc <= now:
        raise UserInputError(f"--tls-cert {cert_path}: expired on "
                             f"{cert.not_valid_after_utc:%Y-%m-%d}; renew it")
    if cert.not_valid_before_utc > now:
        raise UserInputError(f"--tls-cert {cert_path}: not valid before "
                             f"{cert.not_valid_before_utc:%Y-%m-%d}; check this board's clock")
    covered = [name for name in host_names if _covers(covered_names(cert), name)]
    if not covered:
        raise UserInputError(f"--tls-cert {cert_path}: does not cover {', '.join(host_names)}; "
                             "issue it for this host name, or serve on a name it lists")
    return covered[0]


def _covers(names: set[str], host: str) -> bool:
    """RFC 6125 matching: the exact name, or a one-label wildcard (*.example.org)."""
    host = host.lower()
    if host in names:
        return True
    head, _, rest = host.partition(".")
    return bool(rest) and f"*.{rest}" in names
