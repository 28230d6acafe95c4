"""``--tls auto``: a small local certificate authority and the board's server certificate.

Created once in the state folder (edge/view/state.py) and reused across restarts; the server
certificate is re-issued before it expires or when the board's names or addresses change, the
CA only when it nears its own end or cannot vouch for a new name. ECDSA P-256 keys (cheap
handshakes on a Pi), 0600.

The CA is limited by a critical name-constraints extension to the board's own names,
``.local``, ``localhost`` and the private address ranges: a CA key stolen with a board cannot
vouch for any other site on a tablet that trusts it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from edge.view.state import write_private, write_public

CA_FILE, CA_KEY_FILE = "ca.crt", "ca.key"
CERT_FILE, KEY_FILE = "server.crt", "server.key"
CA_DAYS = 3650  # a tablet installs the CA once; ten years
CERT_DAYS = 397  # the longest server certificate browsers accept (398 days)
RENEW_DAYS = 30  # re-issue this long before the end
CLOCK_SKEW = dt.timedelta(hours=1)  # not-before in the past: a tablet's clock may lag
CA_NAME = "nerve-edge local CA"
# Where the board can be reached (RFC 1918, loopback, link-local, IPv6 ULA/link-local).
PRIVATE_NETS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8",
                "169.254.0.0/16", "fc00::/7", "fe80::/10", "::1/128")
PERMITTED_DNS = ("local", "localhost")  # mDNS names (nerve-edge-HOST.local) and this device


@dataclass(frozen=True)
class CertFiles:
    """The PEM files a TLS server loads, and the CA a tablet installs (None: not ours)."""

    cert: Path
    key: Path
    ca: Path | None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization as ser

    return key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())


def _load(cert_path: Path, key_path: Path):
    """(certificate, key) from PEM files, or None when either is missing or unreadable."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    return cert, key


def _dns_names(names) -> list[str]:
    return sorted({n.lower() for n in names if n and not is_ip(n)})


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _ca_permits(ca, names: list[str]) -> bool:
    from cryptography import x509

    ext = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    allowed = [d.value for d in ext.permitted_subtrees if isinstance(d, x509.DNSName)]
    return all(any(n == a or n.endswith("." + a) for a in allowed) for n in _dns_names(names))


def _make_ca(names: list[str]):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key, now = _new_key(), _now()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    dns = sorted({*PERMITTED_DNS, *_dns_names(names)})
    permitted = [x509.DNSName(d) for d in dns]
    permitted += [x509.IPAddress(ipaddress.ip_network(n)) for n in PRIVATE_NETS]
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + dt.timedelta(CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .add_extension(x509.NameConstraints(permitted, None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _san(names: list[str]):
    from cryptography import x509

    entries = [x509.DNSName(n) for n in _dns_names(names)]
    entries += [x509.IPAddress(ipaddress.ip_address(n)) for n in sorted(set(names)) if is_ip(n)]
    return x509.SubjectAlternativeName(entries)


def _make_server(ca, ca_key, names: list[str]):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key, now = _new_key(), _now()
    first = (_dns_names(names) or sorted(names))[0]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first)]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + dt.timedelta(CERT_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                         False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(_san(names), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def _fresh(cert) -> bool:
    return cert.not_valid_after_utc - _now() > dt.timedelta(RENEW_DAYS)


def covered_names(cert) -> set[str]:
    """The DNS names and IP addresses (as text) a certificate's SAN lists."""
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {n.lower() for n in san.get_values_for_type(x509.DNSName)} | {
        str(a) for a in san.get_values_for_type(x509.IPAddress)}


def _server_ok(pair, ca, names: list[str]) -> bool:
    from cryptography.exceptions import InvalidSignature

    if pair is None or not _fresh(pair[0]) or pair[0].issuer != ca.subject:
        return False
    try:
        pair[0].verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):  # another CA's certificate
        return False
    return {n.lower() for n in names} <= covered_names(pair[0])


def ensure_certs(folder: Path, names: list[str], log=None) -> CertFiles:
    """The CA and a server certificate for ``names`` (host names and IP addresses) in
    ``folder``: reused when still good, else made (and said so through ``log``)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    files = CertFiles(folder / CERT_FILE, folder / KEY_FILE, folder / CA_FILE)
    ca_pair = _load(files.ca, folder / CA_KEY_FILE)
    if ca_pair is None or not _fresh(ca_pair[0]) or not _ca_permits(ca_pair[0], names):
        ca_pair = _make_ca(names)
        write_private(folder / CA_KEY_FILE, _key_pem(ca_pair[1]))
        write_public(files.ca, ca_pair[0].public_bytes(Encoding.PEM))
        if log:
            log(f"serve: made a new local CA in {files.ca}: install it on each tablet once "
                "(docs/tablet.md)")
    if not _server_ok(_load(files.cert, files.key), ca_pair[0], names):
        cert, key = _make_server(*ca_pair, names)
        write_private(files.key, _key_pem(key))
        write_public(files.cert, cert.public_bytes(Encoding.PEM))
    return files


def fingerprint(cert_path: Path) -> str:
    """SHA-256 of a PEM certificate's DER bytes, as colon-separated hex (what phones show)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()
