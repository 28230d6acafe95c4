"""HTTPS, pairing and mDNS of the web view (issue 23), without a browser: the generated CA and
certificate (kept, renewed, 0600 keys, name constraints), a hospital's own certificate and its
bad inputs (one line, exit 2), plain HTTP beyond loopback only when asked, the pairing cookie,
/ca.crt and /pair.png, --serve-unpair, and that the mDNS announcement follows its flag."""

from __future__ import annotations

import datetime as dt
import http.client
import socket
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from edge.errors import UserInputError
from edge.view import certs, pairing
from edge.view import serve as serve_mod
from edge.view.https import lan_address
from edge.view.mdns import board_name
from edge.view.serve import ServeSink
from edge.view.state import state_dir
from edge.view.tls import ServeOptions
from tests.edge.test_serve import LAN, Feeder, request, secure_request

REPO = Path(__file__).resolve().parents[2]
TOKEN = "tls-test-token-0123456789"
TLS_LOOPBACK = ServeOptions(tls="on", mdns=False)


def own_cert(tmp_path: Path, names: list[str], days: tuple[int, int] = (-1, 30),
             key_of_other: bool = False) -> tuple[Path, Path]:
    """A 'hospital' certificate for ``names`` (signed by a CA of its own), as PEM files."""
    ca = certs._make_ca(["hospital.example"])
    cert, key = certs._make_server(*ca, names)
    if days != (-1, 30):
        now = dt.datetime.now(dt.timezone.utc)
        from cryptography.hazmat.primitives import hashes

        cert = x509.CertificateBuilder(
            issuer_name=cert.issuer, subject_name=cert.subject, public_key=cert.public_key(),
            serial_number=cert.serial_number, not_valid_before=now + dt.timedelta(days[0]),
            not_valid_after=now + dt.timedelta(days[1]),
            extensions=list(cert.extensions)).sign(ca[1], hashes.SHA256())
    from cryptography.hazmat.primitives.serialization import Encoding

    cert_path, key_path = tmp_path / "site.crt", tmp_path / "site.key"
    cert_path.write_bytes(cert.public_bytes(Encoding.PEM))
    key_path.write_bytes(certs._key_pem(certs._new_key() if key_of_other else key))
    return cert_path, key_path


# ------------------------------------------------------------------ the generated CA

def test_certificates_are_made_once_kept_private_and_reused(tmp_path):
    names = ["localhost", "127.0.0.1", board_name()]
    first = certs.ensure_certs(tmp_path, names)
    pems = {p: p.read_bytes() for p in (first.cert, first.key, first.ca)}
    for private in (first.key, tmp_path / certs.CA_KEY_FILE):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    again = certs.ensure_certs(tmp_path, names)
    assert {p: p.read_bytes() for p in (again.cert, again.key, again.ca)} == pems


def test_server_certificate_is_renewed_before_expiry_and_for_new_names(tmp_path, monkeypatch):
    first = certs.ensure_certs(tmp_path, ["localhost"])
    ca, cert = first.ca.read_bytes(), first.cert.read_bytes()
    monkeypatch.setattr(certs, "RENEW_DAYS", certs.CERT_DAYS + 1)  # "expires within a month"
    renewed = certs.ensure_certs(tmp_path, ["localhost"])
    assert renewed.cert.read_bytes() != cert and renewed.ca.read_bytes() == ca
    monkeypatch.setattr(certs, "RENEW_DAYS", 30)
    more = certs.ensure_certs(tmp_path, ["localhost", "192.168.1.20"])
    assert "192.168.1.20" in certs.covered_names(
        x509.load_pem_x509_certificate(more.cert.read_bytes()))


def test_a_running_view_renews_its_certificate_for_the_next_handshakes(monkeypatch):
    """A board that runs for more than a year without a restart: the renewal check re-issues
    the certificate (same CA) and new connections get the new one, without a restart."""
    monkeypatch.setattr(serve_mod, "RENEW_CHECK_S", 0.05)
    sink = ServeSink.from_spec("127.0.0.1:0", log=None, options=TLS_LOOPBACK)
    ca = sink.security.ca.read_bytes()

    def served_serial() -> int:
        ctx = ssl.create_default_context(cafile=str(sink.security.ca))
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", sink.port)),
                             server_hostname="localhost") as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number

    try:
        before = served_serial()
        monkeypatch.setattr(certs, "RENEW_DAYS", certs.CERT_DAYS + 1)  # due now
        deadline = dt.datetime.now() + dt.timedelta(seconds=20)
        while served_serial() == before and dt.datetime.now() < deadline:
            pass
        assert served_serial() != before and sink.security.ca.read_bytes() == ca
    finally:
        sink.close()


def test_ca_is_critical_name_constrained_to_the_board_local_and_private_ranges(tmp_path):
    files = certs.ensure_certs(tmp_path, ["localhost", board_name()])
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    ext = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert ext.critical
    dns = {d.value for d in ext.value.permitted_subtrees if isinstance(d, x509.DNSName)}
    assert {"local", "localhost", board_name()} <= dns
    nets = {str(d.value) for d in ext.value.permitted_subtrees if isinstance(d, x509.IPAddress)}
    assert {"10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12"} <= nets
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0


def test_a_tls_1_2_only_client_is_served():
    """(Below 1.2 nothing is accepted: tests/edge/test_serve_tls_scan.py, with sslyze.)"""
    sink = ServeSink.from_spec("127.0.0.1:0", log=None, options=TLS_LOOPBACK)
    ctx = ssl.create_default_context(cafile=str(sink.security.ca))
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    conn = http.client.HTTPSConnection("127.0.0.1", sink.port, timeout=10, context=ctx)
    try:
        conn.request("GET", "/healthz")
        assert conn.sock.version() == "TLSv1.2"
        assert conn.getresponse().status == 503  # no frame yet
    finally:
        conn.close()
        sink.close()


# ------------------------------------------------------------------ plain HTTP beyond loopback

def test_plain_http_beyond_loopback_only_with_the_flag_and_a_warning(capsys):
    sink = ServeSink.from_spec("0.0.0.0:0", token=TOKEN, log=None, options=LAN)
    try:
        assert sink.url.startswith("https://") and sink.security.context is not None
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            request(sink.port, f"/healthz?token={TOKEN}")
    finally:
        sink.close()
    plain = ServeSink.from_spec("0.0.0.0:0", token=TOKEN, log=None,
                                options=ServeOptions(insecure_http=True, mdns=False))
    try:
        assert plain.url.startswith("http://") and "insecure-http" in capsys.readouterr().err
        assert request(plain.port, f"/healthz?token={TOKEN}")[0] == 503
    finally:
        plain.close()


def test_loopback_keeps_plain_http_by_default():
    sink = ServeSink.from_spec("127.0.0.1:0", log=None)
    try:
        assert sink.url.startswith("http://127.0.0.1:") and sink.security.context is None
    finally:
        sink.close()


# ------------------------------------------------------------------ a hospital's certificate

def test_own_certificate_is_served(tmp_path):
    cert, key = own_cert(tmp_path, ["127.0.0.1", "board.hospital.example"])
    sink = ServeSink.from_spec("127.0.0.1:0", log=None,
                               options=ServeOptions(cert=str(cert), key=str(key), mdns=False))
    try:
        assert sink.security.ca is None  # no /ca.crt: the hospital's CA is theirs
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", sink.port, timeout=10, context=ctx)
        conn.request("GET", "/healthz")
        der = conn.sock.getpeercert(binary_form=True)
        assert conn.getresponse().status == 503
        conn.close()
        assert x509.load_der_x509_certificate(der) == x509.load_pem_x509_certificate(
            cert.read_bytes())
    finally:
        sink.close()


@pytest.mark.parametrize("case, expect", [
    ("missing_key", "--tls-key"),
    ("dir_key", "cannot read"),
    ("other_key", "does not match"),
    ("other_name", "does not cover"),
    ("expired", "expired"),
    ("not_pem", "not a PEM certificate"),
])
def test_bad_certificate_input_is_one_line_naming_the_file(tmp_path, case, expect):
    names = ["other.example"] if case == "other_name" else ["127.0.0.1"]
    cert, key = own_cert(tmp_path, names, days=(-30, -1) if case == "expired" else (-1, 30),
                         key_of_other=case == "other_key")
    if case == "missing_key":
        key = tmp_path / "absent.key"
    elif case == "dir_key":
        key = tmp_path
    elif case == "not_pem":
        cert.write_text("hello\n")
    with pytest.raises(UserInputError) as info:
        ServeSink.from_spec("127.0.0.1:0", log=None,
                            options=ServeOptions(cert=str(cert), key=str(key), mdns=False))
    message = str(info.value)
    assert expect in message and "\n" not in message
    assert str(cert) in message or str(key) in message


def test_edge_run_exits_2_with_one_line_on_a_key_that_does_not_match(tmp_path):
    cert, key = own_cert(tmp_path, ["127.0.0.1"], key_of_other=True)
    cmd = [sys.executable, "-m", "edge.cli", "--source", "phantom", "--headless",
           "--max-frames", "2", "--serve", "127.0.0.1:0", "--tls-cert", str(cert),
           "--tls-key", str(key)]
    got = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert got.returncode == 2, got.stderr
    errors = [line for line in got.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and str(key) in errors[0] and "Traceback" not in got.stderr


@pytest.mark.parametrize("flags, expect", [
    (["--tls-cert", "a.pem"], "go together"),
    (["--insecure-http", "--tls", "on"], "--insecure-http"),
])
def test_flag_combinations_are_refused(flags, expect):
    with pytest.raises(UserInputError, match=expect):
        ServeOptions(tls="on" if "on" in flags else "auto",
                     cert="a.pem" if "--tls-cert" in flags else None,
                     insecure_http="--insecure-http" in flags)


# ------------------------------------------------------------------ pairing

@pytest.fixture
def paired_board():
    sink = ServeSink.from_spec("0.0.0.0:0", token=TOKEN, log=None, options=LAN)
    feeder = Feeder(sink)
    yield sink
    feeder.close()
    sink.close()


def test_pairing_sets_a_strict_cookie_that_replaces_the_token(paired_board):
    sink = paired_board
    secret = sink.security.pair_secret
    assert secret and sink._server.pair_link.endswith(f"/pair?secret={secret}")
    assert secure_request(sink, "/pair?secret=wrong")[0] == 401
    assert secure_request(sink, "/pair")[0] == 401
    status, headers, _ = secure_request(sink, f"/pair?secret={secret}")
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    for attribute in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert attribute in cookie
    value = cookie.split(";")[0]
    assert secret not in value
    assert secure_request(sink, "/status.json", {"Cookie": value})[0] == 200
    assert secure_request(sink, "/status.json", {"Cookie": value + "x"})[0] == 401
    assert secure_request(sink, "/status.json")[0] == 401  # no cookie, no token


def test_ca_is_public_and_the_qr_image_is_for_this_device(paired_board):
    sink = paired_board
    status, headers, body = secure_request(sink, "/ca.crt")
    assert status == 200 and body == sink.security.ca.read_bytes()
    assert headers["Content-Type"] == "application/x-x509-ca-cert"
    status, headers, body = secure_request(sink, "/pair.png")  # from loopback: this board
    assert status == 200 and body.startswith(b"\x89PNG")
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    # Not for "localhost": HSTS covers every port of a name, and the plain loopback view of
    # this device (127.0.0.1:8080, make run) must stay reachable as http://localhost:8080.
    local = secure_request(sink, "/ca.crt", {"Host": f"localhost:{sink.port}"})[1]
    assert "Strict-Transport-Security" not in local
    address = lan_address()
    if address is not None:  # from another device: only with the token
        ctx = ssl.create_default_context(cafile=str(sink.security.ca))
        ctx.check_hostname = False  # the certificate names this board's address, maybe not
        for path, want in (("/pair.png", 401), (f"/pair.png?token={TOKEN}", 200)):
            conn = http.client.HTTPSConnection(address, sink.port, timeout=10, context=ctx)
            conn.request("GET", path)
            assert conn.getresponse().status == want, path
            conn.close()


def test_pairing_survives_a_restart_and_unpair_ends_it(tmp_path):
    first = ServeSink.from_spec("0.0.0.0:0", token=TOKEN, log=None, options=LAN)
    secret, ca = first.security.pair_secret, first.security.ca.read_bytes()
    first.close()
    second = ServeSink.from_spec("0.0.0.0:0", token=TOKEN, log=None, options=LAN)
    assert second.security.pair_secret == secret and second.security.ca.read_bytes() == ca
    second.close()
    got = subprocess.run([sys.executable, "-m", "edge.cli", "--serve-unpair"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert got.returncode == 0 and "scan" in got.stdout, got.stderr
    assert pairing.load_secret(state_dir()) != secret
    cookie = pairing.set_cookie_header(secret).split(";")[0]
    third = ServeSink.from_spec("0.0.0.0:0", token=TOKEN, log=None, options=LAN)
    try:
        assert secure_request(third, "/status.json", {"Cookie": cookie})[0] == 401
    finally:
        third.close()


def test_banner_gives_the_https_url_the_ca_fingerprint_and_a_qr_code():
    lines: list[str] = []
    sink = ServeSink.from_spec("0.0.0.0:0", log=lines.append, options=LAN)
    sink.close()
    text = "\n".join(lines)
    assert lines[0].startswith("serve: clinic view at https://")
    assert certs.fingerprint(sink.security.ca) in text
    assert "\u2580" in text or "\u2584" in text  # the QR code's half blocks


# ------------------------------------------------------------------ mDNS

def test_board_name_is_a_dns_label_under_local():
    assert board_name("Raspberry_Pi 4.lan") == "nerve-edge-raspberry-pi-4.local"
    assert board_name("nerve-edge-7") == "nerve-edge-7.local"


def test_mdns_follows_its_flag_and_never_on_loopback(monkeypatch):
    announced: list[tuple] = []

    class Recorder:
        def __init__(self, name, addresses, port, tls, warn, only_these=False):
            announced.append((name, port, tls))

        def close(self):
            pass

    monkeypatch.setattr(serve_mod, "Announcer", Recorder)
    monkeypatch.setattr(serve_mod, "lan_address", lambda: "192.168.1.20")
    for spec, options in (("127.0.0.1:0", TLS_LOOPBACK), ("0.0.0.0:0", LAN),
                          ("0.0.0.0:0", ServeOptions())):
        ServeSink.from_spec(spec, log=None, options=options).close()
    assert len(announced) == 1 and announced[0][0] == board_name() and announced[0][2]
