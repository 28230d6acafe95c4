"""edge.meter with a fake clock: percentiles, FPS, non-model share, the table."""

from __future__ import annotations

import pytest

from edge.meter import StageMeter, format_summary


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def advance(self, ms: float) -> None:
        self.t += ms / 1000.0


def run_frames(meter: StageMeter, clock: FakeClock, inference_ms: list[float]) -> None:
    for ms in inference_ms:
        meter.begin_frame()
        with meter.stage("preprocess"):
            clock.advance(2.0)
        meter.start("inference")
        clock.advance(ms)
        meter.stop("inference")
        meter.end_frame()


def test_percentiles_and_totals_on_known_durations():
    clock = FakeClock()
    meter = StageMeter(clock=clock)
    run_frames(meter, clock, [float(v) for v in range(1, 101)])  # 1..100 ms
    s = meter.summary()
    inf = s["stages"]["inference"]
    assert s["frames"] == 100 and inf["count"] == 100
    assert inf["mean_ms"] == pytest.approx(50.5)
    assert inf["p50_ms"] == pytest.approx(50.5)
    assert inf["p95_ms"] == pytest.approx(95.05)
    assert inf["p99_ms"] == pytest.approx(99.01)
    assert s["stages"]["preprocess"]["p50_ms"] == pytest.approx(2.0)
    assert s["stages"]["total"]["mean_ms"] == pytest.approx(52.5)
    assert s["wall_s"] == pytest.approx((5050 + 200) / 1000.0)
    assert s["fps"] == pytest.approx(100 / 5.25, rel=1e-3)
    assert s["non_model_share"] == pytest.approx(1 - 5050 / 5250, abs=1e-4)
    assert meter.last_ms["inference"] == pytest.approx(100.0)


def test_rolling_fps_follows_recent_frames():
    clock = FakeClock()
    meter = StageMeter(clock=clock)
    assert meter.fps == 0.0
    run_frames(meter, clock, [48.0] * 40)  # 50 ms per frame: 20 FPS
    assert meter.fps == pytest.approx(20.0)
    run_frames(meter, clock, [8.0] * 40)  # 10 ms per frame: 100 FPS, the old ones age out
    assert meter.fps == pytest.approx(100.0)


def test_format_summary_is_a_table():
    clock = FakeClock()
    meter = StageMeter(clock=clock)
    run_frames(meter, clock, [10.0, 20.0])
    text = format_summary(meter.summary())
    assert text.splitlines()[0].startswith("2 frames in")
    assert "p50" in text and "inference" in text and "total" in text


def test_discarded_frame_is_not_counted():
    clock = FakeClock()
    meter = StageMeter(clock=clock)
    meter.begin_frame()
    meter.discard_frame()
    assert meter.summary()["frames"] == 0 and meter.summary()["non_model_share"] is None


def test_summary_lists_stages_in_the_given_order_total_last():
    clock = FakeClock()
    meter = StageMeter(clock=clock, order=("capture", "preprocess", "inference"))
    run_frames(meter, clock, [1.0])
    with meter.stage("capture"):  # first seen after the others
        clock.advance(1.0)
    assert list(meter.summary()["stages"]) == ["capture", "preprocess", "inference", "total"]
