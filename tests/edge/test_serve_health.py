"""Fleet health of the web view: /healthz flips to 503 when frames stop, /metrics is valid
Prometheus text (parsed by prometheus_client's own parser), and both follow the token rules."""

from __future__ import annotations

import json
import math

import pytest

from edge.view import metrics as serve_metrics
from edge.view.serve import ServeSink
from tests.edge.test_serve import (
    LAN,
    STAGES,
    Feeder,
    make_result,
    request,
    secure_request,
    wait_until,
)

parser = pytest.importorskip("prometheus_client.parser",
                             reason="prometheus-client is not installed (pip install -e '.[dev]')")

STALL_S = 0.3  # a short stall threshold so the test sees the flip quickly
MODEL = {"sha256": "ab" * 32, "name": "nerve \"default\"\\int8", "version": "1.0",
         "backend": "tflite(ai_edge_litert)"}
TOKEN = "0123456789abcdef-token"


def metric_families(port: int, path: str = "/metrics") -> dict:
    status, headers, body = request(port, path)
    assert status == 200, (status, body)
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in parser.text_string_to_metric_families(body.decode())}


def samples(family, name: str | None = None) -> list:
    return [s for s in family.samples if name is None or s.name == name]


@pytest.fixture
def sink():
    sink = ServeSink.from_spec("127.0.0.1:0", log=None, model=MODEL, stall_after_s=STALL_S)
    yield sink
    sink.close()


def test_healthz_is_503_before_frames_200_while_they_flow_503_when_they_stop(sink):
    status, _, body = request(sink.port, "/healthz")
    assert status == 503 and json.loads(body)["status"] == "starting"
    feeder = Feeder(sink)
    assert wait_until(lambda: request(sink.port, "/healthz")[0] == 200)
    assert json.loads(request(sink.port, "/healthz")[2])["status"] == "ok"
    feeder.close()  # the source stalls: no new frame
    assert wait_until(lambda: request(sink.port, "/healthz")[0] == 503)
    body = json.loads(request(sink.port, "/healthz")[2])
    assert body["status"] == "stalled" and body["frame_age_s"] > STALL_S
    assert body["stall_after_s"] == STALL_S
    assert samples(metric_families(sink.port)["nerve_edge_healthy"])[0].value == 0


def test_metrics_parse_and_count_every_frame(sink):
    writes = 37
    for i in range(writes):
        sink.write(make_result(i))
    families = metric_families(sink.port)
    assert samples(families["nerve_edge_frames"])[0].value == writes  # counter: _total dropped
    assert samples(families["nerve_edge_frames_with_nerve"])[0].value == writes
    assert samples(families["nerve_edge_fps"])[0].value == pytest.approx(42.5)
    assert samples(families["nerve_edge_nerve_detected"])[0].value == 1
    assert samples(families["nerve_edge_healthy"])[0].value == 1
    assert samples(families["nerve_edge_uptime_seconds"])[0].value >= 0
    info = samples(families["nerve_edge_model_info"])[0]
    assert info.labels == MODEL and info.value == 1  # quotes and backslash survive escaping
    hist = families["nerve_edge_stage_latency_seconds"]
    assert hist.type == "histogram"
    for stage, ms in STAGES.items():
        count = [s for s in samples(hist, "nerve_edge_stage_latency_seconds_count")
                 if s.labels["stage"] == stage]
        total = [s for s in samples(hist, "nerve_edge_stage_latency_seconds_sum")
                 if s.labels["stage"] == stage]
        assert count[0].value == writes
        assert total[0].value == pytest.approx(writes * ms / 1000.0)
        buckets = [s for s in samples(hist, "nerve_edge_stage_latency_seconds_bucket")
                   if s.labels["stage"] == stage]
        values = [b.value for b in buckets]
        assert values == sorted(values) and buckets[-1].labels["le"] == "+Inf"
        first_holding = next(b for b in buckets if float(b.labels["le"]) >= ms / 1000.0)
        assert first_holding.value == writes


def test_metrics_before_the_first_frame_parse(sink):
    families = metric_families(sink.port)
    assert samples(families["nerve_edge_frames"])[0].value == 0
    assert math.isnan(samples(families["nerve_edge_frame_age_seconds"])[0].value)
    assert samples(families["nerve_edge_healthy"])[0].value == 0


def test_health_routes_need_the_token_beyond_loopback_and_scrape_over_tls():
    """As a Prometheus on the LAN scrapes: HTTPS, verified against the board's CA file
    (tls_config.ca_file), the token as a Bearer header (authorization.credentials)."""
    sink = ServeSink.from_spec("0.0.0.0:0", token=TOKEN, log=None, options=LAN)
    try:
        sink.write(make_result(0))
        for path in ("/healthz", "/metrics"):
            assert secure_request(sink, path)[0] == 401, path
            assert secure_request(sink, f"{path}?token={TOKEN}")[0] == 200, path
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        status, headers, body = secure_request(sink, "/metrics", bearer)
        assert status == 200 and headers["Strict-Transport-Security"].startswith("max-age=")
        assert "nerve_edge_frames_total 1" in body.decode()
        with pytest.raises(ConnectionError):  # plain HTTP on the HTTPS port: nothing served
            request(sink.port, "/healthz")
    finally:
        sink.close()


def test_health_rules_by_hand():
    assert serve_metrics.health(None, False)[0] == 503
    assert serve_metrics.health(0.1, False)[0] == 200
    assert serve_metrics.health(serve_metrics.STALL_AFTER_S + 0.1, False)[0] == 503
    assert serve_metrics.health(0.1, True) == (503, {"status": "stopped", "frame_age_s": 0.1,
                                                     "stall_after_s": serve_metrics.STALL_AFTER_S})
