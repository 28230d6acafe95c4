"""Model outputs -> a nerve mask (or one mask per structure) at the frame's size.

    probability map (model size) -> [EMA over frames] -> threshold -> drop small components
    -> [presence gate] -> resize to the ROI/frame -> place into the frame

Everything up to the resize runs at the model's input size (128x176 by default), so the cost
does not grow with the camera resolution and ``min_area`` means the same at any frame size.
The binary mask is resized with INTER_LINEAR_EXACT and re-thresholded at half: smooth contours
instead of staircase edges, at the price of one uint8 resize (cheaper than resizing floats).
INTER_LINEAR_EXACT is integer arithmetic (8-bit fixed-point weights), so the frame-size mask
has the same bits on x86, arm64 and in the browser (edge/view/web/app/imgproc.js); OpenCV's plain
INTER_LINEAR rounds differently per instruction set, which moved outline pixels.

Every model is a list of classes (a (1, H, W, C) output, C = the sidecar's classes; a nerve-only
model is one class): ``decide`` runs once per channel, with each class's own threshold and min
area. With more than one class the class-id map writes the safety classes last, so a vessel
overrides a nerve where both fire. Safety rule: a safety structure whose mask has a pixel within
CENTRE_BAND_FRAC of the image width of the image's vertical centre line (the ROI's, when there
is one) raises the centre-line warning. It is a fixed band, not needle tracking: the probe's
centre is where an in-plane needle is usually aimed, so a vessel there is worth a look.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from edge.model.metadata import DEFAULT_CLASSES, DEFAULT_MIN_AREA, DEFAULT_THRESHOLD, ClassSpec
from edge.types import ClassResult

MASK_ON = 255  # mask value for nerve pixels in frame-size masks
HALF = 127  # re-threshold after the bilinear resize of a 0/255 mask (nerve: > HALF)
CONNECTIVITY = 8  # pixels touching at a corner belong to the same component
# Safety rule: a safety structure within this fraction of the image width (either side) of the
# image's vertical centre line raises the warning. 0.10 -> a band 20% of the width wide.
CENTRE_BAND_FRAC = 0.10
NERVE_NAME = "nerve"  # the class that fills the nerve-only fields (mask, detected, area_px)


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
    presence: the presence score when the model has one.
    classes: one ClassResult per class (a nerve-only model: one, sharing ``mask``);
    class_map: uint8 class ids at frame size, multi-class models only (else None);
    safety_warning: a safety class is near the centre line (see the module doc)."""

    mask: np.ndarray
    prob: np.ndarray
    detected: bool
    area_px: int
    presence: float | None
    classes: list[ClassResult] | None = None
    class_map: np.ndarray | None = None
    safety_warning: bool = False


def split_outputs(outputs: list[np.ndarray], n_classes: int = 1
                  ) -> tuple[np.ndarray, list[float | None]]:
    """THE output splitter: backend outputs -> (probabilities H x W x C float32, one presence
    score or None per class), whatever order the runtime lists them in. The mask is the 4-D
    (1, H, W, C) output; a (1, C) presence head gates every class, a (1, 1) one only the first
    (a nerve-only model: its one class)."""
    probs, scores = None, None
    for out in outputs:
        arr = np.asarray(out)
        if arr.ndim == 4 and probs is None:
            probs = arr[0]
        elif arr.ndim == 2 and arr.shape[0] == 1 and arr.size in (1, n_classes) and scores is None:
            scores = [float(v) for v in arr.reshape(-1)]
    if probs is None or probs.shape[-1] != n_classes:
        shapes = ", ".join(str(np.shape(o)) for o in outputs)
        raise ValueError(f"no (1, H, W, {n_classes}) mask among the model outputs: {shapes}")
    presence = [None] * n_classes
    presence[: len(scores or [])] = scores or []
    return probs.astype(np.float32, copy=False), presence


def class_configs(classes: tuple[ClassSpec, ...], cfg: PostprocessConfig
                  ) -> tuple[PostprocessConfig, ...]:
    """Each class's config: its own threshold / min_area (resolved by edge.model.settings:
    flag > the class's sidecar value > the model's), else ``cfg``'s."""
    return tuple(replace(cfg, threshold=cfg.threshold if c.threshold is None else c.threshold,
                         min_area=cfg.min_area if c.min_area is None else c.min_area)
                 for c in classes)


def near_centre_line(mask: np.ndarray, roi: tuple[int, int, int, int] | None = None) -> bool:
    """Any mask pixel within CENTRE_BAND_FRAC of the image width of the image's vertical
    centre line; the image is the ROI when given, else the whole frame."""
    x, w = (roi[0], roi[2]) if roi is not None else (0, mask.shape[1])
    centre, band = x + w / 2.0, CENTRE_BAND_FRAC * w
    lo, hi = max(int(np.floor(centre - band)), 0), int(np.ceil(centre + band))
    return bool(mask[:, lo:hi].any())


def class_id_map(classes: list[ClassResult]) -> np.ndarray:
    """uint8 class ids (0 = background): classes in order, safety classes written last, so a
    safety structure overrides a nerve where both fire."""
    out = np.zeros(classes[0].mask.shape, np.uint8)
    for c in sorted(classes, key=lambda c: c.safety):  # stable: class order within each group
        out[c.mask > 0] = c.id
    return out


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

    The device (Postprocessor) and every evaluation (edge.model.evaluate.score) call this, so a
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
    scaled = cv2.resize(mask01 * np.uint8(MASK_ON), (w, h), interpolation=cv2.INTER_LINEAR_EXACT)
    _, scaled = cv2.threshold(scaled, HALF, MASK_ON, cv2.THRESH_BINARY)
    if roi is None:
        return scaled
    out = np.zeros((fh, fw), np.uint8)
    out[y : y + h, x : x + w] = scaled
    return out


class Postprocessor:
    """Stateful post-processing: keeps the smoothed probability maps between frames. One path
    for every model: one decide() per class (a nerve-only model has one class).

    Call ``reset()`` when the stream jumps (a new video, a new patient).
    """

    def __init__(self, cfg: PostprocessConfig | None = None,
                 classes: tuple[ClassSpec, ...] | None = None):
        """``classes``: the model's classes in channel order (None = DEFAULT_CLASSES, the
        nerve); their own threshold / min_area win over ``cfg``'s."""
        self.cfg = cfg or PostprocessConfig()
        self.classes = tuple(classes or DEFAULT_CLASSES)
        self.class_cfgs = class_configs(self.classes, self.cfg)
        names = [c.name for c in self.classes]
        self.nerve = names.index(NERVE_NAME) if NERVE_NAME in names else 0
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

    def decide(self, probs: np.ndarray, presence: list[float | None]) -> list[np.ndarray]:
        """(H, W, C) probabilities -> one (H, W) uint8 0/1 decision per class, model size."""
        return [decide(probs[..., k], presence[k], cfg) for k, cfg in enumerate(self.class_cfgs)]

    def __call__(
        self,
        outputs: list[np.ndarray],
        frame_hw: tuple[int, int],
        roi: tuple[int, int, int, int] | None = None,
    ) -> PostResult:
        probs, presence = split_outputs(outputs, len(self.classes))
        probs = self._smooth(probs)
        results = []
        for spec, mask01 in zip(self.classes, self.decide(probs, presence), strict=True):
            mask = to_frame(mask01, frame_hw, roi)
            area = int(cv2.countNonZero(mask))
            results.append(ClassResult(spec.id, spec.name, spec.color, spec.safety, mask,
                                       area > 0, area, spec.safety and near_centre_line(mask, roi)))
        nerve = results[self.nerve]
        # class-id map: only where there is more than one class (a nerve-only model's masks
        # stay 0/255, as its --save-masks files always were)
        return PostResult(mask=nerve.mask, prob=probs[..., self.nerve], detected=nerve.detected,
                          area_px=nerve.area_px, presence=presence[self.nerve], classes=results,
                          class_map=class_id_map(results) if len(results) > 1 else None,
                          safety_warning=any(c.near_centre for c in results))
