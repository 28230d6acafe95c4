"""Nerve area in the unit the source allows: mm2 when it knows the size of a pixel (a DICOM
ultrasound region), px otherwise. Pure numpy-free arithmetic: the loop may import it freely.

    area = NerveArea(source.info.pixel_area_mm2)
    area.text(post.area_px)        -> "nerve: yes, 12.3 mm2" (overlay / status line)
    area.add(post.area_px, post.detected); area.summary() -> the --report block

The report block needs frames, mean and max only: they are kept as running figures
(edge.stats.RunningStats), so a run of weeks holds a few numbers, not one per frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.stats import RunningStats

MM2_DECIMALS = 2


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
