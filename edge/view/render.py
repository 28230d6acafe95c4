"""What the user sees of each frame of edge-run: the FrameResult the sinks get (the frame as
BGR, the mask, the overlay with its text lines) and, when headless, the status line.
Drawing is edge.view.overlay's; timings come from edge.meter; areas from edge.stats.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from edge import log
from edge.meter import StageMeter
from edge.model.classes import class_lines, status_suffix
from edge.model.preprocess import to_gray8
from edge.stats import NerveArea
from edge.types import Frame, FrameResult
from edge.view.overlay import draw_overlay

STATUS_EVERY_S = 2.0  # headless progress line period
SHOWN_STAGES = ("preprocess", "inference", "postprocess")  # the overlay's ms line


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any frame -> HxWx3 uint8 BGR (what overlays and recordings use)."""
    if image.ndim == 3 and image.shape[2] == 3:
        return image if image.dtype == np.uint8 else (image >> 8).astype(np.uint8)
    return cv2.cvtColor(to_gray8(image), cv2.COLOR_GRAY2BGR)


def stats_lines(meter: StageMeter, post, show_fps: bool,
                area: NerveArea | None = None) -> list[str]:
    """The overlay's text: FPS and per-stage ms (``show_fps``), then what was found."""
    area = area or NerveArea()
    # multi-class: one line per structure; nerve-only: the nerve line as before
    found = (class_lines(post.classes, area) if post.class_map is not None
             else [area.text(post.area_px, post.detected)])
    if not show_fps:
        return found
    ms = meter.last_ms
    stages = " ".join(f"{name[:4]} {ms[name]:.1f}" for name in SHOWN_STAGES if name in ms)
    return [f"{meter.fps:.1f} FPS", f"{stages} ms", *found]


def render(frame: Frame, post, meter: StageMeter, area: NerveArea, overlay: bool,
           alpha: float, show_fps: bool) -> FrameResult:
    """What the sinks get: the frame as BGR, the mask, and the overlay (fill opacity
    ``alpha``) when ``overlay`` says a sink shows it."""
    bgr = to_bgr8(frame.image)
    drawn = None
    if overlay:
        drawn = draw_overlay(bgr, post.mask, alpha, stats_lines(meter, post, show_fps, area),
                             post.classes, post.class_map, post.safety_warning)
    return FrameResult(
        frame_index=frame.index, name=frame.name, frame=bgr, mask=post.mask, prob=post.prob,
        overlay=drawn, detected=post.detected, area_px=post.area_px,
        area_mm2=area.mm2(post.area_px), presence=post.presence,
        fps=meter.fps, stage_ms=dict(meter.last_ms), classes=post.classes,
        class_map=post.class_map, safety_warning=post.safety_warning,
    )


class StatusLine:
    """The headless progress line on stderr every STATUS_EVERY_S (edge-bench soak parses it:
    keep the format ``edge-run: frame N, X FPS, inference Y ms, nerve ...``)."""

    def __init__(self, on: bool):
        self.on = on  # headless and not quiet
        self._due = time.monotonic() + STATUS_EVERY_S

    def update(self, meter: StageMeter, post, area: NerveArea) -> None:
        now = time.monotonic()
        if not self.on or now < self._due:
            return
        self._due = now + STATUS_EVERY_S
        nerve = f"nerve yes ({area.label(post.area_px)})" if post.detected else "nerve no"
        inference = meter.last_ms.get("inference", 0.0)
        log.note(f"edge-run: frame {meter.frames}, {meter.fps:.1f} FPS, "
                 f"inference {inference:.1f} ms, {nerve}{status_suffix(post.classes, area)}")
