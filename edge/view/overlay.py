"""Draw the nerve (or each structure of a multi-class model) and the stats on a frame.
Drawing only: timings come in as text lines (measured by edge.meter), never measured here.

Multi-class: each class filled in its sidecar colour from the class-id map (safety classes
on top), outlined in its colour, a legend top-right, and the safety warning as a red
banner at the bottom when edge.model.postprocess says a safety structure is near the centre line."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edge.model.metadata import NERVE_COLOR, color_bgr
from edge.types import ClassResult

# A nerve-only model: filled and outlined in the nerve's one colour (edge.model.metadata), as a
# multi-class model draws each class in its own.
FILL_BGR = color_bgr(NERVE_COLOR)
CONTOUR_BGR = FILL_BGR
CONTOUR_PX = 2
TEXT_BGR = (255, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.45
TEXT_PX = 1
LINE_GAP_PX = 6  # between text lines
MARGIN_PX = 6  # text inset from the frame corner
BACKDROP_DIM = 0.45  # backdrop keeps this fraction of the image brightness behind the text
SWATCH_PX = 10  # legend colour square side
WARNING_BGR = (0, 0, 220)  # red banner behind the safety warning
WARNING_SCALE = 0.6  # the warning is larger than the stats text: it must be seen
WARNING_TEXT = "{names} NEAR CENTRE LINE"
SAFETY_TAG = " (avoid)"  # legend suffix for safety structures


def draw_overlay(
    frame_bgr: np.ndarray,
    mask: np.ndarray,
    alpha: float = 0.4,
    stats_lines: list[str] | None = None,
    classes: Sequence[ClassResult] | None = None,
    class_map: np.ndarray | None = None,
    warning: bool = False,
) -> np.ndarray:
    """A copy of ``frame_bgr`` (HxWx3 uint8) with the nerve filled at ``alpha``, outlined,
    and ``stats_lines`` written top-left on a dark backdrop. ``mask``: HxW, nonzero = nerve.
    With ``class_map`` (a multi-class model): each of ``classes`` in its colour, a legend,
    and, when ``warning``, the safety banner naming the safety classes near the centre."""
    out = frame_bgr.copy()
    if class_map is not None and classes:
        _draw_classes(out, classes, class_map, alpha)
    elif mask.any():  # one class: in its colour (status.json names the same), else the nerve's
        one = color_bgr(classes[0].color) if classes else FILL_BGR
        _fill(out, mask, alpha, one)
        _outline(out, mask, one)
    if stats_lines:
        _text_block(out, stats_lines)
    if class_map is not None and classes:
        _legend(out, classes)
        near = [c.name.upper() for c in classes if c.near_centre]
        if warning and near:
            _banner(out, WARNING_TEXT.format(names=", ".join(near)))
    return out


def _draw_classes(out: np.ndarray, classes: Sequence[ClassResult], class_map: np.ndarray,
                  alpha: float) -> None:
    # Fill from the class-id map (safety classes already on top there); outline each class's
    # own mask, safety classes last so their outline is never hidden.
    for c in classes:
        shown = (class_map == c.id).astype(np.uint8)
        if shown.any():
            _fill(out, shown, alpha, color_bgr(c.color))
    for c in sorted(classes, key=lambda c: c.safety):
        if c.detected:
            _outline(out, c.mask, color_bgr(c.color))


def _fill(out: np.ndarray, mask: np.ndarray, alpha: float, fill_bgr=FILL_BGR) -> None:
    # Blend only inside the mask's bounding box: the nerve is a small part of the frame.
    x, y, w, h = cv2.boundingRect(mask)
    region = out[y : y + h, x : x + w]
    inside = mask[y : y + h, x : x + w] > 0
    color = np.empty_like(region)
    color[:] = fill_bgr
    blended = cv2.addWeighted(region, 1.0 - alpha, color, alpha, 0.0)
    np.copyto(region, blended, where=inside[:, :, None])


def _outline(out: np.ndarray, mask: np.ndarray, contour_bgr=CONTOUR_BGR) -> None:
    contours, _ = cv2.findContours(
        (mask > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    cv2.drawContours(out, contours, -1, contour_bgr, CONTOUR_PX, lineType=cv2.LINE_AA)


def _legend(out: np.ndarray, classes: Sequence[ClassResult]) -> None:
    """Top-right (stats are top-left, the warning at the bottom): a colour square and the
    name per class, on a dark backdrop."""
    lines = [c.name + (SAFETY_TAG if c.safety else "") for c in classes]
    sizes = [cv2.getTextSize(line, FONT, FONT_SCALE, TEXT_PX) for line in lines]
    line_h = max(max(h + base for (_, h), base in sizes), SWATCH_PX) + LINE_GAP_PX
    width = max(w for (w, _), _ in sizes) + SWATCH_PX + 3 * MARGIN_PX
    fh, fw = out.shape[:2]
    left = max(fw - width, 0)
    box = out[: min(line_h * len(lines) + MARGIN_PX, fh), left:]
    box[:] = (box * BACKDROP_DIM).astype(np.uint8)
    for i, (c, line) in enumerate(zip(classes, lines, strict=True)):
        x, y = left + MARGIN_PX, MARGIN_PX + i * line_h
        cv2.rectangle(out, (x, y), (x + SWATCH_PX, y + SWATCH_PX), color_bgr(c.color),
                      cv2.FILLED)
        cv2.putText(out, line, (x + SWATCH_PX + MARGIN_PX, y + SWATCH_PX), FONT, FONT_SCALE,
                    TEXT_BGR, TEXT_PX, cv2.LINE_AA)


def _banner(out: np.ndarray, text: str) -> None:
    """A red band across the bottom with ``text`` centred: the safety warning."""
    (tw, th), base = cv2.getTextSize(text, FONT, WARNING_SCALE, TEXT_PX + 1)
    fh, fw = out.shape[:2]
    band_h = th + base + 2 * MARGIN_PX
    cv2.rectangle(out, (0, max(fh - band_h, 0)), (fw, fh), WARNING_BGR, cv2.FILLED)
    cv2.putText(out, text, (max((fw - tw) // 2, 0), fh - MARGIN_PX - base), FONT,
                WARNING_SCALE, TEXT_BGR, TEXT_PX + 1, cv2.LINE_AA)


def _text_block(out: np.ndarray, lines: list[str]) -> None:
    sizes = [cv2.getTextSize(line, FONT, FONT_SCALE, TEXT_PX) for line in lines]
    line_h = max(h + base for (_, h), base in sizes) + LINE_GAP_PX
    width = max(w for (w, _), _ in sizes) + 2 * MARGIN_PX
    height = line_h * len(lines) + MARGIN_PX
    fh, fw = out.shape[:2]
    box = out[: min(height, fh), : min(width, fw)]
    box[:] = (box * BACKDROP_DIM).astype(np.uint8)
    for i, line in enumerate(lines):
        baseline_y = MARGIN_PX + (i + 1) * line_h - LINE_GAP_PX
        cv2.putText(out, line, (MARGIN_PX, baseline_y), FONT, FONT_SCALE, TEXT_BGR, TEXT_PX,
                    cv2.LINE_AA)
