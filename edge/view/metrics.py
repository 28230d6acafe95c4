"""Fleet health for the web view: ``/healthz`` and ``/metrics`` (Prometheus text format 0.0.4).

Standard library only. The loop thread records each frame in O(stages)
(a few list increments under the hub's lock); rendering happens in the HTTP thread that asks.
Memory is fixed: histograms have fixed buckets, whatever the run length.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

# No frame for longer than this -> /healthz answers 503. A camera at 1 FPS still delivers
# several frames in it, and it matches the live sources' default retry budget (5 s), after
# which edge-run gives up on a lost stream anyway.
STALL_AFTER_S = 5.0
# Per-stage latency buckets (s): 0.5 ms (resize on a laptop) .. 2 s (a Pi Zero on a big model).
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
PREFIX = "nerve_edge"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class StageHistogram:
    """One stage's latency histogram: counts per bucket (not cumulative), sum and count."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    total_s: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        self.total_s += seconds
        self.count += 1

    def cumulative(self) -> list[int]:
        running, out = 0, []
        for c in self.counts:
            running += c
            out.append(running)
        return out


@dataclass
class RunCounters:
    """What /metrics reports beyond the latest frame; updated by the loop thread only."""

    frames: int = 0
    frames_with_nerve: int = 0
    stages: dict[str, StageHistogram] = field(default_factory=dict)

    def record(self, detected: bool, stage_ms: dict[str, float]) -> None:
        self.frames += 1
        self.frames_with_nerve += int(bool(detected))
        for stage, ms in stage_ms.items():
            self.stages.setdefault(str(stage), StageHistogram()).observe(float(ms) / 1000.0)


def health(frame_age_s: float | None, closed: bool,
           stall_after_s: float = STALL_AFTER_S) -> tuple[int, dict]:
    """(HTTP status, JSON body) for /healthz: 200 only while frames keep coming."""
    body = {"frame_age_s": None if frame_age_s is None else round(frame_age_s, 3),
            "stall_after_s": stall_after_s}
    if closed:
        return 503, {"status": "stopped", **body}
    if frame_age_s is None:
        return 503, {"status": "starting", **body}
    if frame_age_s > stall_after_s:
        return 503, {"status": "stalled", **body}
    return 200, {"status": "ok", **body}


def escape_label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, object]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items()) + "}"


def _number(value: float | int) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"  # the exposition format's spelling (Python's repr is "nan")
    return repr(float(value)) if isinstance(value, float) else str(int(value))


class _Text:
    """Builds the exposition: one HELP/TYPE header per metric family, then its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines += [f"# HELP {PREFIX}_{name} {help_text}", f"# TYPE {PREFIX}_{name} {kind}"]

    def sample(self, name: str, value: float | int, labels: dict | None = None) -> None:
        self.lines.append(f"{PREFIX}_{name}{_labels(labels or {})} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _histograms(out: _Text, stages: dict[str, StageHistogram]) -> None:
    out.family("stage_latency_seconds", "histogram",
               "Per-frame time spent in each pipeline stage (capture, preprocess, "
               "inference, postprocess, render).")
    for stage, hist in sorted(stages.items()):
        bounds = [*map(repr, LATENCY_BUCKETS_S), "+Inf"]
        for bound, count in zip(bounds, hist.cumulative(), strict=True):
            out.sample("stage_latency_seconds_bucket", count, {"stage": stage, "le": bound})
        out.sample("stage_latency_seconds_sum", float(hist.total_s), {"stage": stage})
        out.sample("stage_latency_seconds_count", hist.count, {"stage": stage})


def render_metrics(counters: RunCounters, latest: dict, model: dict[str, str],
                   uptime_s: float, frame_age_s: float | None, healthy: bool,
                   viewers: int) -> str:
    """The whole /metrics body. ``latest``: status_of() of the newest frame."""
    out = _Text()
    out.family("frames_total", "counter", "Frames processed by the pipeline since start.")
    out.sample("frames_total", counters.frames)
    out.family("frames_with_nerve_total", "counter", "Frames in which a nerve was detected.")
    out.sample("frames_with_nerve_total", counters.frames_with_nerve)
    out.family("fps", "gauge", "Rolling pipeline frames per second at the newest frame.")
    out.sample("fps", float(latest.get("fps") or 0.0))
    out.family("nerve_detected", "gauge", "1 if the newest frame shows a nerve, else 0.")
    out.sample("nerve_detected", int(bool(latest.get("detected"))))
    out.family("nerve_area_pixels", "gauge", "Nerve area in the newest frame (frame pixels).")
    out.sample("nerve_area_pixels", int(latest.get("area_px") or 0))
    _histograms(out, counters.stages)
    out.family("model_info", "gauge", "The model being run (value is always 1).")
    out.sample("model_info", 1, model)
    out.family("uptime_seconds", "gauge", "Seconds since the web view started.")
    out.sample("uptime_seconds", round(uptime_s, 3))
    out.family("frame_age_seconds", "gauge",
               "Seconds since the newest frame (NaN before the first frame).")
    out.sample("frame_age_seconds", float("nan") if frame_age_s is None else round(frame_age_s, 3))
    out.family("healthy", "gauge", "1 while frames flow (what /healthz answers 200 for), else 0.")
    out.sample("healthy", int(healthy))
    out.family("viewers", "gauge", "Browsers streaming the overlay now.")
    out.sample("viewers", viewers)
    return out.text()

