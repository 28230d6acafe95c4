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

NerveArea (here) is the nerve area in the unit the source allows: mm2 when it knows the size
of a pixel (a DICOM ultrasound region, ``source.info.pixel_area_mm2``), px otherwise; it
keeps the report's area block as a RunningStats:

    area = NerveArea(source.info.pixel_area_mm2)
    area.text(post.area_px, post.detected)  -> "nerve: yes, 12.3 mm2" (overlay / status line)
    area.add(post.area_px, post.detected); area.summary() -> the --report block
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MM2_DECIMALS = 2


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


@dataclass
class NerveArea:
    """Converts and accumulates nerve areas. ``pixel_area_mm2`` None = report pixels."""

    pixel_area_mm2: float | None = None
    _areas: RunningStats = field(default_factory=RunningStats)  # frames with a nerve
    _frames: int = 0

    @property
    def unit(self) -> str:
        return "px" if self.pixel_area_mm2 is None else "mm2"

    def value(self, area_px: int) -> float:
        """``area_px`` frame pixels in this unit."""
        if self.pixel_area_mm2 is None:
            return float(area_px)
        return round(area_px * self.pixel_area_mm2, MM2_DECIMALS)

    def mm2(self, area_px: int) -> float | None:
        """The area in mm2, or None when the pixel size is unknown (status JSON field)."""
        return None if self.pixel_area_mm2 is None else self.value(area_px)

    def label(self, area_px: int) -> str:
        number = self.value(area_px)
        return f"{int(number)} px" if self.pixel_area_mm2 is None else f"{number:.1f} mm2"

    def text(self, area_px: int, detected: bool) -> str:
        return f"nerve: yes, {self.label(area_px)}" if detected else "nerve: no"

    def add(self, area_px: int, detected: bool) -> None:
        self._frames += 1
        if detected:
            self._areas.add(self.value(area_px))

    def summary(self) -> dict:
        """The --report block: unit, pixel size, frames with a nerve, mean/max area."""
        areas = self._areas
        return {
            "unit": self.unit,
            "pixel_area_mm2": self.pixel_area_mm2,
            "frames": self._frames,
            "frames_with_nerve": areas.count,
            "mean": areas.mean(MM2_DECIMALS),
            "max": areas.max_or_none(),
        }
