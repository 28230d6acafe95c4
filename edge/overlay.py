"""Draw the nerve and the stats on a frame. Drawing only: timings come in as text lines
(measured by edge.meter), never measured here."""

from __future__ import annotations

import cv2
import numpy as np

FILL_BGR = (0, 200, 255)  # amber fill: stands out on gray ultrasound
CONTOUR_BGR = (0, 255, 255)  # yellow outline
CONTOUR_PX = 2
TEXT_BGR = (255, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.45
TEXT_PX = 1
LINE_GAP_PX = 6  # between text lines
MARGIN_PX = 6  # text inset from the frame corner
BACKDROP_DIM = 0.45  # backdrop keeps this fraction of the image brightness behind the text


def draw_overlay(
    frame_bgr: np.ndarray,
    mask: np.ndarray,
    alpha: float = 0.4,
    stats_lines: list[str] | None = None,
) -> np.ndarray:
    """A copy of ``frame_bgr`` (HxWx3 uint8) with the nerve filled at ``alpha``, outlined,
    and ``stats_lines`` written top-left on a dark backdrop. ``mask``: HxW, nonzero = nerve."""
    out = frame_bgr.copy()
    if mask.any():
        _fill(out, mask, alpha)
        _outline(out, mask)
    if stats_lines:
        _text_block(out, stats_lines)
    return out


def _fill(out: np.ndarray, mask: np.ndarray, alpha: float) -> None:
    # Blend only inside the mask's bounding box: the nerve is a small part of the frame.
    x, y, w, h = cv2.boundingRect(mask)
    region = out[y : y + h, x : x + w]
    inside = mask[y : y + h, x : x + w] > 0
    color = np.empty_like(region)
    color[:] = FILL_BGR
    blended = cv2.addWeighted(region, 1.0 - alpha, color, alpha, 0.0)
    np.copyto(region, blended, where=inside[:, :, None])


def _outline(out: np.ndarray, mask: np.ndarray) -> None:
    contours, _ = cv2.findContours(
        (mask > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    cv2.drawContours(out, contours, -1, CONTOUR_BGR, CONTOUR_PX, lineType=cv2.LINE_AA)


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
