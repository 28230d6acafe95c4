"""The model's view of a frame, for choosing and pre-labelling: ONE function, masks_for().

Built on edge's one model object (edge.model.SegModel: the sidecar's settings, ROI included),
so a pre-label is exactly what edge-run would draw. Per frame it also says how sure the model is:
``margin`` (mean |p - 0.5| over the pixels where the model sees anything, p > SEEN_P: low =
unsure; the background, near 0 almost everywhere, would hide it; 0.5 when it sees nothing) and
``flip_disagreement`` (1 - Dice between the mask and the mask of the mirrored frame mirrored
back: a model that changes its mind under a flip is unsure there).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.model.metadata import ClassSpec

DEFAULT_MODEL = "default"  # the packaged model edge-run runs without --model
SEEN_P = 0.05  # a pixel the model "sees something" in: any class above this probability


@dataclass(frozen=True)
class Prediction:
    """mask: uint8 class ids at the frame's size (0 = background, else the sidecar class id).
    margin: mean |p - 0.5| in [0, 0.5]. flip_disagreement: in [0, 1] (0 when both empty)."""

    mask: np.ndarray
    margin: float
    flip_disagreement: float

    @property
    def empty(self) -> bool:
        return not self.mask.any()


def model_path(model: str) -> Path:
    """"default" -> the packaged model; anything else is a .tflite/.onnx path."""
    if model != DEFAULT_MODEL:
        return Path(model)
    from edge.model.store import default_model_path

    return default_model_path()


def model_classes(model: str) -> tuple[ClassSpec, ...]:
    """The model's classes in channel order (a nerve-only model: one "nerve" class)."""
    from edge.model.metadata import load_meta

    return load_meta(model_path(model)).class_list


class _Runner:
    """The opened model: frame -> (class-id mask at frame size, probability map)."""

    def __init__(self, model: str) -> None:
        from edge.model.segmodel import SegModel

        self.model = SegModel.open(model_path(model))
        self.first_id = self.model.meta.class_list[0].id

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = self.model
        outputs = m.infer(*m.prepare(image))
        post = m.decide(outputs, image.shape[:2])
        ids = post.class_map if post.class_map is not None else \
            np.where(post.mask > 0, self.first_id, 0).astype(np.uint8)
        probs = next(np.asarray(o) for o in outputs if np.ndim(o) == 4)
        return ids, probs


def disagreement(a: np.ndarray, b: np.ndarray) -> float:
    """1 - Dice over labelled pixels (same class id counts as agreement); 0 when both empty."""
    total = int((a > 0).sum() + (b > 0).sum())
    if total == 0:
        return 0.0
    return 1.0 - 2.0 * int(((a == b) & (a > 0)).sum()) / total


def mean_margin(probs: np.ndarray) -> float:
    """Mean |p - 0.5| over the pixels where some class is above SEEN_P (0.5 if none)."""
    seen = probs.max(axis=-1) > SEEN_P
    return float(np.abs(probs[seen] - 0.5).mean()) if seen.any() else 0.5


def masks_for(model: str, frames: Iterable[np.ndarray]) -> list[Prediction]:
    """One Prediction per frame (8/16-bit, gray or BGR, any size), in order."""
    run = _Runner(model)
    out = []
    for image in frames:
        ids, probs = run(image)
        flipped, _ = run(np.ascontiguousarray(cv2.flip(image, 1)))
        margin = mean_margin(probs.astype(np.float32))
        out.append(Prediction(ids, margin, disagreement(ids, cv2.flip(flipped, 1))))
    return out
