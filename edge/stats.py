"""Bounded statistics of a run: nothing here grows with the number of frames.

A board runs for weeks at up to ~1000 frames/s, so a statistic kept for the report may not
keep one number per frame (issue 24: nerve and class areas appended to lists grew ~57 bytes a
frame). Every per-frame statistic of edge-run is one of:

  * RunningStats (here): count, sum, min and max in O(1) memory. The mean is sum / count,
    summed in frame order exactly as ``sum(list)`` over the old lists did (the same float),
    and min / max are exact at any run length. The area blocks of the report (nerve_area,
    classes) only give frames, mean and max, so they need nothing more.
  * edge.meter.StageStats: a RunningStats plus percentiles, exact over the first
    EXACT_SAMPLES values, then from a fixed log-spaced histogram (within 1 %).

    stats = RunningStats()
    stats.add(12.5); stats.add(7.0)
    stats.count, stats.mean(2), stats.max  -> 2, 9.75, 12.5
"""

from __future__ import annotations

import math


class RunningStats:
    """count, total (sum), min and max of a stream of numbers; O(1) memory."""

    __slots__ = ("count", "total", "min", "max")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        if value < self.min:  # comparisons, not min()/max(): this runs several times a frame
            self.min = value
        if value > self.max:
            self.max = value

    def mean(self, decimals: int | None = None) -> float | None:
        """sum / count (rounded to ``decimals`` when given); None before the first value."""
        if not self.count:
            return None
        mean = self.total / self.count
        return mean if decimals is None else round(mean, decimals)

    def max_or_none(self) -> float | None:
        """The largest value, or None before the first (the report's "no frames" value)."""
        return self.max if self.count else None
