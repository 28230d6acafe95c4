"""A TLS scanner (sslyze) against the web view's HTTPS: no protocol below TLS 1.2, no weak
cipher (every accepted TLS 1.2 suite is ECDHE + AEAD), no compression, no insecure
renegotiation, not vulnerable to Heartbleed, ROBOT or CCS injection, and HSTS sent. The
summary is printed (benchmarks/results/serve_tls.md records one)."""

from __future__ import annotations

import pytest

from edge.view.serve import ServeSink
from edge.view.tls import ServeOptions

sslyze = pytest.importorskip("sslyze", reason="sslyze is not installed (pip install -e '.[dev]')")

OLD = ("ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites", "tls_1_0_cipher_suites",
       "tls_1_1_cipher_suites")
WEAK = ("NULL", "EXPORT", "RC4", "DES", "MD5", "CBC", "ANON", "PSK")


def scan(port: int):
    from sslyze import (
        ScanCommand,
        Scanner,
        ServerNetworkLocation,
        ServerScanRequest,
        ServerScanStatusEnum,
    )

    commands = {ScanCommand.SSL_2_0_CIPHER_SUITES, ScanCommand.SSL_3_0_CIPHER_SUITES,
                ScanCommand.TLS_1_0_CIPHER_SUITES, ScanCommand.TLS_1_1_CIPHER_SUITES,
                ScanCommand.TLS_1_2_CIPHER_SUITES, ScanCommand.TLS_1_3_CIPHER_SUITES,
                ScanCommand.TLS_COMPRESSION, ScanCommand.SESSION_RENEGOTIATION,
                ScanCommand.HEARTBLEED, ScanCommand.ROBOT, ScanCommand.OPENSSL_CCS_INJECTION,
                ScanCommand.HTTP_HEADERS}
    scanner = Scanner()
    scanner.queue_scans([ServerScanRequest(ServerNetworkLocation("127.0.0.1", port),
                                           scan_commands=commands)])
    (result,) = list(scanner.get_results())
    assert result.scan_status == ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
    return result.scan_result


def summary(res) -> dict:
    def names(attempt):
        return [s.cipher_suite.name for s in attempt.result.accepted_cipher_suites]

    return {
        **{k: names(getattr(res, k)) for k in (*OLD, "tls_1_2_cipher_suites",
                                               "tls_1_3_cipher_suites")},
        "compression": res.tls_compression.result.supports_compression,
        "insecure_renegotiation":
            res.session_renegotiation.result.is_vulnerable_to_client_renegotiation_dos
            or not res.session_renegotiation.result.supports_secure_renegotiation,
        "heartbleed": res.heartbleed.result.is_vulnerable_to_heartbleed,
        "ccs_injection": res.openssl_ccs_injection.result.is_vulnerable_to_ccs_injection,
        "robot": res.robot.result.robot_result.name,
        "hsts": res.http_headers.result.strict_transport_security_header is not None,
    }


def test_sslyze_finds_nothing_below_tls_1_2_and_no_weak_cipher():
    sink = ServeSink.from_spec("127.0.0.1:0", log=None, options=ServeOptions(tls="on",
                                                                            mdns=False))
    try:
        got = summary(scan(sink.port))
    finally:
        sink.close()
    print("sslyze:", got)
    assert all(got[k] == [] for k in OLD), got
    assert got["tls_1_2_cipher_suites"] and got["tls_1_3_cipher_suites"]
    for suite in got["tls_1_2_cipher_suites"]:
        assert "ECDHE" in suite and ("GCM" in suite or "CHACHA20" in suite), suite
        assert not any(w in suite for w in WEAK), suite
    assert not got["compression"] and not got["heartbleed"] and not got["ccs_injection"]
    assert got["robot"].startswith("NOT_VULNERABLE"), got["robot"]
    assert got["hsts"]
