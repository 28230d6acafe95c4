"""Per-stage timers and a rolling FPS. Measuring only (drawing is edge.view.overlay's job).

    meter = StageMeter()
    meter.begin_frame()
    with meter.stage("capture"):
        frame = source.read()
    ...
    meter.end_frame()
    print(format_summary(meter.summary()))

Memory is bounded: a board runs for weeks at up to ~1000 frames/s, so nothing here may grow
with the number of frames. Each stage keeps (see StageStats):
  * exact count, sum (-> mean), min and max over the whole run (edge.stats.RunningStats, the
    helper every per-frame statistic of the report uses);
  * its first EXACT_SAMPLES durations, so short runs (benchmarks, tests) get exact
    percentiles (numpy's linear interpolation);
  * past that, a fixed log-spaced histogram over the whole run (HIST_BINS counters from
    HIST_MIN_MS to HIST_MAX_MS, bucket ratio HIST_RATIO): p50/p95/p99 are then within
    PERCENTILE_REL_ERROR (1 %) of the exact ones, never outside the observed min..max
    (durations under HIST_MIN_MS or over HIST_MAX_MS are reported as the run's min / max).
The rolling FPS uses the last FPS_WINDOW_FRAMES frame ends only.
"""

from __future__ import annotations

import math
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from edge.stats import RunningStats

MS_PER_S = 1000.0
FPS_WINDOW_S = 1.0  # rolling FPS over the last second ...
FPS_WINDOW_FRAMES = 30  # ... or the last 30 frames, whichever is fewer
PERCENTILES = (50, 95, 99)
TOTAL = "total"  # per-frame wall time from begin_frame to end_frame
MODEL_STAGE = "inference"
EXACT_SAMPLES = 10_000  # per stage: 80 kB of float64; runs up to this length are exact
HIST_MIN_MS = 1e-3  # 1 us: shorter durations share the first bucket
HIST_MAX_MS = 1e5  # 100 s: longer ones share the last bucket (a stalled source, not a stage)
HIST_RATIO = 1.02  # each bucket is 2 % wider than the one before
HIST_BINS = math.ceil(math.log(HIST_MAX_MS / HIST_MIN_MS) / math.log(HIST_RATIO))  # 931
PERCENTILE_REL_ERROR = math.sqrt(HIST_RATIO) - 1.0  # ~1 %: a bucket's centre vs its edges
_LOG_MIN = math.log(HIST_MIN_MS)
_INV_LOG_RATIO = 1.0 / math.log(HIST_RATIO)


def hist_bin(ms: float) -> int:
    """The histogram bucket of a duration in ms (clamped to the first/last bucket)."""
    if ms <= HIST_MIN_MS:
        return 0
    return min(int((math.log(ms) - _LOG_MIN) * _INV_LOG_RATIO), HIST_BINS - 1)


def bin_centre_ms(index: np.ndarray) -> np.ndarray:
    """Geometric centre of each bucket: at most PERCENTILE_REL_ERROR from any value in it."""
    return HIST_MIN_MS * HIST_RATIO ** (np.asarray(index, dtype=np.float64) + 0.5)


class StageStats(RunningStats):
    """Streaming statistics of one stage's durations, in bounded memory (see module doc):
    RunningStats' count / total / min / max in ms, plus the percentile samples."""

    def __init__(self) -> None:
        super().__init__()
        self._exact: array | None = array("d")  # None once the histogram took over
        self._hist: array | None = None

    @property
    def sum_ms(self) -> float:
        return self.total

    @property
    def min_ms(self) -> float:
        return self.min

    @property
    def max_ms(self) -> float:
        return self.max

    def add(self, ms: float) -> None:
        RunningStats.add(self, ms)
        if self._exact is not None:
            if len(self._exact) < EXACT_SAMPLES:
                self._exact.append(ms)
                return
            self._to_histogram()
        self._hist[hist_bin(ms)] += 1

    def _to_histogram(self) -> None:
        self._hist = array("q", bytes(8 * HIST_BINS))
        for value in self._exact:
            self._hist[hist_bin(value)] += 1
        self._exact = None

    @property
    def exact(self) -> bool:
        """True while percentiles are computed from every sample."""
        return self._exact is not None

    def buffer_len(self) -> int:
        """Stored numbers (samples or buckets): bounded by max(EXACT_SAMPLES, HIST_BINS)."""
        return len(self._exact) if self._exact is not None else len(self._hist)

    def percentile(self, p: float) -> float:
        """numpy-style (linear) percentile; exact, or within PERCENTILE_REL_ERROR."""
        if self._exact is not None:
            return float(np.percentile(np.frombuffer(self._exact, np.float64), p))
        cum = np.cumsum(np.frombuffer(self._hist, np.int64))
        rank = p / 100.0 * (self.count - 1)
        low = int(rank)
        ranks = np.array([low, min(low + 1, self.count - 1)])
        bins = np.searchsorted(cum, ranks, side="right")
        # The end buckets are open-ended: their observed extreme represents them better.
        centres = np.where(bins == 0, self.min_ms, bin_centre_ms(bins))
        lo, hi = np.where(bins == HIST_BINS - 1, self.max_ms, centres)
        value = lo + (hi - lo) * (rank - low)
        return float(min(max(value, self.min_ms), self.max_ms))

    def summary(self) -> dict:
        out = {"count": self.count, "mean_ms": round(self.sum_ms / self.count, 4)}
        for p in PERCENTILES:
            out[f"p{p}_ms"] = round(self.percentile(p), 4)
        return out


class StageMeter:
    """Collects per-stage durations (ms) and per-frame totals, in bounded memory.

    clock: seconds, monotonic (injectable so tests can use a fake clock).
    order: stage names in the order summaries list them (others follow as first seen;
           "total" comes last).
    """

    def __init__(
        self, clock: Callable[[], float] = time.perf_counter, order: tuple[str, ...] = ()
    ):
        self._clock = clock
        self._order = order
        self._stats: dict[str, StageStats] = {}
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
        stats = self._stats.get(name)
        if stats is None:
            stats = self._stats[name] = StageStats()
        stats.add(ms)
        self.last_ms[name] = ms

    def stage_stats(self) -> dict[str, StageStats]:
        """The live per-stage statistics (read-only use: e.g. /metrics, memory tests)."""
        return dict(self._stats)

    def summary(self) -> dict:
        """frames, wall_s, fps, per-stage {count, mean_ms, p50_ms, p95_ms, p99_ms} (the
        "total" entry is the per-frame wall time), and non_model_share = 1 - inference/total.
        Counts and means cover the whole run; percentiles are exact or within 1 % (module doc)."""
        wall = 0.0
        if self._first_start is not None and self._last_end is not None:
            wall = self._last_end - self._first_start
        names = [n for n in self._order if n in self._stats]
        names += [n for n in self._stats if n not in names and n != TOTAL]
        names += [TOTAL] if TOTAL in self._stats else []
        stages = {name: self._stats[name].summary() for name in names}
        total = self._stats[TOTAL].sum_ms if TOTAL in self._stats else 0.0
        model = self._stats[MODEL_STAGE].sum_ms if MODEL_STAGE in self._stats else 0.0
        return {
            "frames": self.frames,
            "wall_s": round(wall, 4),
            "fps": round(self.frames / wall, 2) if wall > 0 else 0.0,
            "stages": stages,
            "non_model_share": round(1.0 - model / total, 4) if total > 0 else None,
        }


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
