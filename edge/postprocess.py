"""Model outputs -> a nerve mask at the frame's size.

    probability map (model size) -> [EMA over frames] -> threshold -> drop small components
    -> [presence gate] -> resize to the ROI/frame -> place into the frame

Everything up to the resize runs at the model's input size (128x176 by default), so the cost
does not grow with the camera resolution and ``min_area`` means the same at any frame size.
The binary mask is resized with INTER_LINEAR and re-thresholded at half: smooth contours
instead of staircase edges, at the price of one uint8 resize (cheaper than resizing floats).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.metadata import DEFAULT_MIN_AREA, DEFAULT_THRESHOLD

MASK_ON = 255  # mask value for nerve pixels in frame-size masks
HALF = 127  # re-threshold after the linear resize of a 0/255 mask
CONNECTIVITY = 8  # pixels touching at a corner belong to the same component


@dataclass(frozen=True)
class PostprocessConfig:
    """How model outputs become a mask.

    threshold: probability above which a pixel is nerve.
    min_area: connected components smaller than this many MODEL-INPUT pixels are dropped
              (0 = keep everything).
    smooth: EMA weight of the previous probability map, in [0, 1): p = s * p_prev + (1 - s) * p.
            0 = off (each frame on its own; right for unrelated images).
    presence_threshold: with a presence output, masks are emptied when presence is below it.
    """

    threshold: float = DEFAULT_THRESHOLD
    min_area: int = DEFAULT_MIN_AREA
    smooth: float = 0.0
    presence_threshold: float = 0.5

    def __post_init__(self):
        if not 0.0 <= self.smooth < 1.0:
            raise ValueError(f"smooth must be in [0, 1), got {self.smooth}")
        if self.min_area < 0:
            raise ValueError(f"min_area must be >= 0, got {self.min_area}")


@dataclass
class PostResult:
    """mask: uint8 0/255 at frame size; prob: float32 map at model size (after smoothing);
    detected: any nerve pixel left; area_px: nerve pixels in the frame-size mask;
    presence: the presence score when the model has one."""

    mask: np.ndarray
    prob: np.ndarray
    detected: bool
    area_px: int
    presence: float | None


def split_outputs(outputs: list[np.ndarray]) -> tuple[np.ndarray, float | None]:
    """Backend outputs -> (probability map HxW float32, presence score or None).

    The mask is the 4-D (1, H, W, 1) output, the presence score the 2-D (1, 1) one, whatever
    order the runtime lists them in.
    """
    prob, presence = None, None
    for out in outputs:
        arr = np.asarray(out)
        if arr.ndim == 4 and prob is None:
            prob = arr[0, :, :, 0]
        elif arr.ndim == 2 and arr.size == 1 and presence is None:
            presence = float(arr.reshape(-1)[0])
    if prob is None:
        shapes = ", ".join(str(np.shape(o)) for o in outputs)
        raise ValueError(f"no (1, H, W, 1) mask among the model outputs: {shapes}")
    return prob.astype(np.float32, copy=False), presence


def binarize(prob: np.ndarray, cfg: PostprocessConfig) -> np.ndarray:
    """Threshold, then drop connected components smaller than cfg.min_area. uint8 0/1."""
    mask = (prob > cfg.threshold).astype(np.uint8)
    if cfg.min_area <= 0 or not mask.any():
        return mask
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=CONNECTIVITY)
    small = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] < cfg.min_area) + 1
    if small.size == n - 1:
        mask[:] = 0
    elif small.size:
        mask[np.isin(labels, small)] = 0
    return mask


def decide(prob: np.ndarray, presence: float | None, cfg: PostprocessConfig) -> np.ndarray:
    """THE mask decision, at model size: threshold, drop components under ``min_area``, and
    empty the mask when a presence score is below ``presence_threshold``. uint8 0/1.

    The device (Postprocessor) and every evaluation (edge.evaluate.score) call this, so a
    model is scored exactly the way it is used.
    """
    mask01 = binarize(prob, cfg)
    if presence is not None and presence < cfg.presence_threshold:
        mask01[:] = 0
    return mask01


def to_frame(
    mask01: np.ndarray,
    frame_hw: tuple[int, int],
    roi: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Model-size 0/1 mask -> frame-size 0/255 mask, placed into the ROI rectangle if any."""
    fh, fw = frame_hw
    x, y, w, h = roi if roi is not None else (0, 0, fw, fh)
    if not mask01.any():
        return np.zeros((fh, fw), np.uint8)
    scaled = cv2.resize(mask01 * np.uint8(MASK_ON), (w, h), interpolation=cv2.INTER_LINEAR)
    _, scaled = cv2.threshold(scaled, HALF, MASK_ON, cv2.THRESH_BINARY)
    if roi is None:
        return scaled
    out = np.zeros((fh, fw), np.uint8)
    out[y : y + h, x : x + w] = scaled
    return out


class Postprocessor:
    """Stateful post-processing: keeps the smoothed probability map between frames.

    Call ``reset()`` when the stream jumps (a new video, a new patient).
    """

    def __init__(self, cfg: PostprocessConfig | None = None):
        self.cfg = cfg or PostprocessConfig()
        self._ema: np.ndarray | None = None

    def reset(self) -> None:
        self._ema = None

    def _smooth(self, prob: np.ndarray) -> np.ndarray:
        s = self.cfg.smooth
        if s <= 0.0:
            return prob
        if self._ema is None or self._ema.shape != prob.shape:
            self._ema = prob.copy()
        else:
            # In place: ema = s * ema + (1 - s) * prob, no new arrays per frame.
            self._ema *= np.float32(s)
            self._ema += np.float32(1.0 - s) * prob
        return self._ema.copy()  # the result outlives this frame; the state must not leak

    def __call__(
        self,
        outputs: list[np.ndarray],
        frame_hw: tuple[int, int],
        roi: tuple[int, int, int, int] | None = None,
    ) -> PostResult:
        prob, presence = split_outputs(outputs)
        prob = self._smooth(prob)
        mask01 = decide(prob, presence, self.cfg)
        mask = to_frame(mask01, frame_hw, roi)
        area = int(cv2.countNonZero(mask))
        return PostResult(mask=mask, prob=prob, detected=area > 0, area_px=area, presence=presence)
