"""Per-stage timers and a rolling FPS. Measuring only (drawing is edge.overlay's job).

    meter = StageMeter()
    meter.begin_frame()
    with meter.stage("capture"):
        frame = source.read()
    ...
    meter.end_frame()
    print(format_summary(meter.summary()))
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

MS_PER_S = 1000.0
FPS_WINDOW_S = 1.0  # rolling FPS over the last second ...
FPS_WINDOW_FRAMES = 30  # ... or the last 30 frames, whichever is fewer
PERCENTILES = (50, 95, 99)
TOTAL = "total"  # per-frame wall time from begin_frame to end_frame
MODEL_STAGE = "inference"


class StageMeter:
    """Collects per-stage durations (ms) and per-frame totals.

    clock: seconds, monotonic (injectable so tests can use a fake clock).
    order: stage names in the order summaries list them (others follow as first seen;
           "total" comes last).
    """

    def __init__(
        self, clock: Callable[[], float] = time.perf_counter, order: tuple[str, ...] = ()
    ):
        self._clock = clock
        self._order = order
        self._samples: dict[str, list[float]] = {}
        self._open: dict[str, float] = {}
        self._frame_start: float | None = None
        self._first_start: float | None = None
        self._last_end: float | None = None
        self._ends: deque[float] = deque(maxlen=FPS_WINDOW_FRAMES + 1)
        self.last_ms: dict[str, float] = {}
        self.frames = 0

    def start(self, name: str) -> None:
        self._open[name] = self._clock()

    def stop(self, name: str) -> float:
        """End stage ``name``; returns its duration in ms."""
        ms = (self._clock() - self._open.pop(name)) * MS_PER_S
        self._record(name, ms)
        return ms

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.start(name)
        try:
            yield
        finally:
            self.stop(name)

    def begin_frame(self) -> None:
        self._frame_start = self._clock()
        if self._first_start is None:
            self._first_start = self._frame_start

    def end_frame(self) -> None:
        now = self._clock()
        if self._frame_start is not None:
            self._record(TOTAL, (now - self._frame_start) * MS_PER_S)
        self._frame_start = None
        self._last_end = now
        self._ends.append(now)
        self.frames += 1

    def discard_frame(self) -> None:
        """Forget an unfinished frame (the source ended during capture)."""
        self._frame_start = None
        self._open.clear()

    @property
    def fps(self) -> float:
        """Frames per second over the last ~1 s / 30 frames (0 until two frames ended)."""
        ends = list(self._ends)
        if len(ends) < 2:
            return 0.0
        recent = [t for t in ends if t >= ends[-1] - FPS_WINDOW_S]
        window = recent if len(recent) >= 2 else ends[-2:]
        span = window[-1] - window[0]
        return (len(window) - 1) / span if span > 0 else 0.0

    def _record(self, name: str, ms: float) -> None:
        self._samples.setdefault(name, []).append(ms)
        self.last_ms[name] = ms

    def summary(self) -> dict:
        """frames, wall_s, fps, per-stage {count, mean_ms, p50_ms, p95_ms, p99_ms} (the
        "total" entry is the per-frame wall time), and non_model_share = 1 - inference/total."""
        wall = 0.0
        if self._first_start is not None and self._last_end is not None:
            wall = self._last_end - self._first_start
        names = [n for n in self._order if n in self._samples]
        names += [n for n in self._samples if n not in names and n != TOTAL]
        names += [TOTAL] if TOTAL in self._samples else []
        stages = {name: _stats(self._samples[name]) for name in names}
        total = sum(self._samples.get(TOTAL, []))
        model = sum(self._samples.get(MODEL_STAGE, []))
        return {
            "frames": self.frames,
            "wall_s": round(wall, 4),
            "fps": round(self.frames / wall, 2) if wall > 0 else 0.0,
            "stages": stages,
            "non_model_share": round(1.0 - model / total, 4) if total > 0 else None,
        }


def _stats(values: list[float]) -> dict:
    arr = np.asarray(values, dtype=np.float64)
    out = {"count": int(arr.size), "mean_ms": round(float(arr.mean()), 4)}
    for p in PERCENTILES:
        out[f"p{p}_ms"] = round(float(np.percentile(arr, p)), 4)
    return out


def format_summary(summary: dict) -> str:
    """A readable table of a summary() dict."""
    head = f"{summary['frames']} frames in {summary['wall_s']:.2f} s: {summary['fps']:.1f} FPS"
    share = summary.get("non_model_share")
    if share is not None:
        head += f" (non-model share {share:.0%})"
    rows = [head, f"{'stage':<12}{'count':>7}{'mean':>9}{'p50':>9}{'p95':>9}{'p99':>9}  ms"]
    for name, s in summary["stages"].items():
        rows.append(
            f"{name:<12}{s['count']:>7}{s['mean_ms']:>9.2f}{s['p50_ms']:>9.2f}"
            f"{s['p95_ms']:>9.2f}{s['p99_ms']:>9.2f}"
        )
    return "\n".join(rows)
