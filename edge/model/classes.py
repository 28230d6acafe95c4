"""Per-structure numbers for the outputs: the status JSON and the headless line (per frame)
and the --report block (over the run). Numbers and text only; the masks are made by
edge.model.postprocess and drawn by edge.view.overlay.

    class_status(result.classes)  -> {"nerve": {"detected": .., "area_px": ..}, ...}
    tally = ClassTally(); tally.add(post.classes, post.safety_warning); tally.summary()
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.stats import MM2_DECIMALS, NerveArea, RunningStats
from edge.types import ClassResult

NEAR_CENTRE_TEXT = "near centre line"


def class_status(classes: list[ClassResult] | None) -> dict:
    """``{name: {id, color, safety, detected, area_px, near_centre}}`` in class order, plain
    JSON types (the status JSON's "classes"; the nerve's mm2 stays in ``area_mm2``)."""
    return {c.name: {"id": int(c.id), "color": c.color, "safety": bool(c.safety),
                     "detected": bool(c.detected), "area_px": int(c.area_px),
                     "near_centre": bool(c.near_centre)}
            for c in classes or []}


def class_lines(classes: list[ClassResult], area: NerveArea) -> list[str]:
    """One overlay text line per class: "vessel: yes, 310 px (near centre line)"."""
    return [f"{c.name}: yes, {area.label(c.area_px)}"
            f"{' (' + NEAR_CENTRE_TEXT + ')' if c.near_centre else ''}"
            if c.detected else f"{c.name}: no" for c in classes]


def status_suffix(classes: list[ClassResult] | None, area: NerveArea) -> str:
    """The headless line's tail for the classes after the nerve: ", vessel yes (310 px),
    SAFETY vessel near centre line"; empty for a nerve-only model."""
    if not classes or len(classes) < 2:
        return ""
    parts = [f"{c.name} yes ({area.label(c.area_px)})" if c.detected else f"{c.name} no"
             for c in classes if c.name != "nerve"]
    near = [c.name for c in classes if c.near_centre]
    if near:
        parts.append(f"SAFETY {', '.join(near)} {NEAR_CENTRE_TEXT}")
    return "".join(f", {p}" for p in parts)


@dataclass
class _Counts:
    id: int
    safety: bool
    areas: RunningStats = field(default_factory=RunningStats)  # bounded: no per-frame list
    near_centre: int = 0


@dataclass
class ClassTally:
    """Accumulates per-class detection over a run for the --report block, in bounded memory
    (counters and running area figures, edge.stats.RunningStats)."""

    area: NerveArea = field(default_factory=NerveArea)
    frames: int = 0
    warning_frames: int = 0
    _counts: dict[str, _Counts] = field(default_factory=dict)

    def add(self, classes: list[ClassResult] | None, warning: bool) -> None:
        self.frames += 1
        self.warning_frames += int(warning)
        for c in classes or []:
            counts = self._counts.setdefault(c.name, _Counts(c.id, c.safety))
            counts.near_centre += int(c.near_centre)
            if c.detected:
                counts.areas.add(self.area.value(c.area_px))

    def summary(self) -> dict:
        """``{"classes": {name: {...}}, "safety_warning_frames": n}`` (areas in the
        NerveArea unit: px, or mm2 when the source knows its pixel size)."""
        classes = {}
        for name, c in self._counts.items():
            areas = c.areas
            classes[name] = {
                "id": c.id, "safety": c.safety, "frames": self.frames,
                "frames_detected": areas.count, "area_unit": self.area.unit,
                "mean_area": areas.mean(MM2_DECIMALS), "max_area": areas.max_or_none(),
                "frames_near_centre": c.near_centre,
            }
        return {"classes": classes, "safety_warning_frames": self.warning_frames}
