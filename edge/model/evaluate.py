"""THE evaluator: score a model (edge.model.SegModel) on labelled frames as the device decides.

    ev = score(model, frames)
    ev.metrics["per_image_dice"], ev.metrics["pooled_dice"], ev.classes["vessel"], ...

Each frame goes the device's way through the model object: its resolved settings'
normalization -> Backend.run -> edge.model.postprocess.split_outputs -> one decide() per class
(threshold, min area, presence gate; temporal smoothing off: frames are independent). One
scorer over C channels (a nerve-only model: C = 1). Predictions are compared with the labels
at the model input size (labels: edge.model.preprocess.mask_to_input, the same crop and resize
as the frames). ``edge-train eval``, the ``edge-convert`` gate and ``edge-bench accuracy`` all
call ``score``: the same model and frames give the same numbers in every tool. NumPy + OpenCV
only (no TensorFlow): a Keras model comes in as a SegModel too (train.modelio).

Metric conventions (train/losses.py has TF versions, checked against these in tests):

- per-image Dice: 2|A∩B| / (|A| + |B|), and 1 when both masks are empty (as Kaggle scored).
  Both counts are returned, named: ``dice_all`` (every frame, empty-vs-empty = 1) and
  ``dice_present`` (only the frames whose truth holds the structure). ``per_image_dice`` keeps
  the meaning each published figure had: the nerve headline (summarize) is ``dice_all``; a
  class's figure (class_metrics, CLASSES.md) is ``dice_present``.
- pooled Dice / IoU: over all pixels of all images at once (1 when everything is empty).
- precision: TP / (TP + FP), 1 when nothing was predicted; recall: TP / (TP + FN), 1 when
  there is nothing to find.
- detection rate: among images whose truth has a nerve, the share where the prediction
  overlaps it (None when no image has a nerve).
- presence accuracy: share of images where "any nerve predicted" equals "any nerve in truth".
- false-positive rate: among images whose truth has no nerve (``n_empty_truth`` of them), the
  share where the model outlines one (None when no image is empty). The device's decisions
  count (threshold, min area, presence gate): raising --min-area or the threshold lowers it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

METRIC_KEYS = (
    "per_image_dice",
    "pooled_dice",
    "iou",
    "precision",
    "recall",
    "pixel_accuracy",
    "detection_rate",
    "presence_accuracy",
    "n_images",
    "n_empty_truth",
    "false_positive_rate",
    "dice_all",
    "dice_present",
)
PROGRESS_EVERY = 200  # frames between progress lines


# ---------------------------------------------------------------- metrics


def _flat(y) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim == 4 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = a[None]
    return (a.reshape(a.shape[0], -1) > 0).astype(np.float64)


def _ratio(num: float, den: float, empty: float) -> float:
    return float(num / den) if den > 0 else float(empty)


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = _flat(y_true), _flat(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"truth {t.shape} and prediction {p.shape} differ in shape")
    return t, p


def _dice_flat(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    inter = (t * p).sum(axis=1)
    den = t.sum(axis=1) + p.sum(axis=1)
    return np.where(den > 0, 2.0 * inter / np.maximum(den, 1.0), 1.0)


def dice_per_image(y_true, y_pred) -> np.ndarray:
    """(N,) hard Dice per image; 1.0 where truth and prediction are both empty."""
    return _dice_flat(*_pair(y_true, y_pred))


def dice_counts(t: np.ndarray, p: np.ndarray) -> dict:
    """Both per-image Dice means, named: over all frames (empty-vs-empty = 1) and over the
    frames whose truth holds the structure (None when none does)."""
    dice, present = _dice_flat(t, p), t.sum(axis=1) > 0
    return {"dice_all": float(dice.mean()) if dice.size else None,
            "dice_present": float(dice[present].mean()) if present.any() else None}


def summarize(y_true, y_pred) -> dict:
    """All metrics of binary masks (N, H, W) as plain floats/ints (JSON-ready); the nerve
    headline: per_image_dice = dice_all."""
    t, p = _pair(y_true, y_pred)
    tp = float((t * p).sum())
    fp = float(((1 - t) * p).sum())
    fn = float((t * (1 - p)).sum())
    tn = float(t.size) - tp - fp - fn
    has_t, has_p = t.sum(axis=1) > 0, p.sum(axis=1) > 0
    overlap = (t * p).sum(axis=1) > 0
    n_pos = int(has_t.sum())
    return {
        "per_image_dice": float(_dice_flat(t, p).mean()),
        "pooled_dice": _ratio(2 * tp, 2 * tp + fp + fn, 1.0),
        "iou": _ratio(tp, tp + fp + fn, 1.0),
        "precision": _ratio(tp, tp + fp, 1.0),
        "recall": _ratio(tp, tp + fn, 1.0),
        "pixel_accuracy": _ratio(tp + tn, tp + tn + fp + fn, 1.0),
        "detection_rate": float(overlap[has_t].mean()) if n_pos else None,
        "presence_accuracy": float((has_t == has_p).mean()),
        "n_images": int(t.shape[0]),
        "n_empty_truth": int(t.shape[0] - n_pos),
        "false_positive_rate": float(has_p[~has_t].mean()) if n_pos < t.shape[0] else None,
        **dice_counts(t, p),
    }


def fp_phrase(metrics: dict) -> str:
    """'false positives 3/40 empty frames (0.0750)', or 'no empty frame to count false
    positives on': how edge-train eval and the gate say it."""
    n, rate = metrics.get("n_empty_truth") or 0, metrics.get("false_positive_rate")
    if not n or rate is None:
        return "no empty frame to count false positives on"
    return f"false positives {round(rate * n)}/{n} empty frames ({rate:.4f})"


# ---------------------------------------------------------------- frames


@dataclass(frozen=True)
class LabelledFrames:
    """Frames at the model input geometry (the crop + resize of edge.model.preprocess done once:
    train.datasets.load_labelled reads a data folder into this).

    images: (N, H, W) uint8 gray. labels: (N, H, W) uint8 0/1, or (N, H, W, C) for a
    multi-class model (channel k = classes[k], scored per class). names: one per frame."""

    images: np.ndarray
    labels: np.ndarray
    names: tuple[str, ...] = ()

    def __post_init__(self):
        if self.images.shape != self.labels.shape[:3] or self.images.ndim != 3 or \
                self.labels.ndim not in (3, 4):
            raise ValueError(f"images {self.images.shape} and labels {self.labels.shape} must "
                             "be (N, H, W) and (N, H, W) or (N, H, W, C)")

    def __len__(self) -> int:
        return len(self.images)


# ---------------------------------------------------------------- score


@dataclass
class Evaluation:
    """metrics: summarize() of the nerve channel (with (N, H, W) nerve labels) or {}.
    classes: class name -> class_metrics() (with (N, H, W, C) per-class labels, or nerve
    labels of a one-class model) or {}.
    dice: (N,) per-image Dice of the nerve channel (nerve labels) or None. masks: (N, H, W, C)
    uint8 0/1 decisions. prob: (N, H, W, C) float32 probabilities (only with keep_prob).
    presence: (N, C) presence scores when the model has that output."""

    metrics: dict
    classes: dict
    dice: np.ndarray | None
    masks: np.ndarray
    prob: np.ndarray | None = None
    presence: np.ndarray | None = None


def _predict(model, images: np.ndarray, progress: Callable[[str], None] | None):
    """model.predict in chunks of PROGRESS_EVERY frames (a progress line after each)."""
    batch = max(1, int(getattr(model.backend, "max_batch", 1) or 1))
    chunk = -(-PROGRESS_EVERY // batch) * batch  # whole batches: the same calls as one pass
    parts = []
    for lo in range(0, len(images), chunk):
        parts.append(model.predict(images[lo : lo + chunk]))
        if progress and lo + chunk < len(images):
            progress(f"scored {lo + chunk}/{len(images)} frames")
    if not parts:
        parts.append(model.predict(images))
    presence = [p.presence for p in parts]
    return (np.concatenate([p.masks for p in parts]), np.concatenate([p.prob for p in parts]),
            None if any(v is None for v in presence) else np.concatenate(presence))


def score(model, frames: LabelledFrames, keep_prob: bool = False,
          progress: Callable[[str], None] | None = None) -> Evaluation:
    """Run ``model`` (a SegModel) on every frame and score its decisions. (N, H, W) labels
    are the nerve's: the nerve headline (summarize), and for a one-class model its class
    figures too. (N, H, W, C) labels hold one channel per class (channel k = the model's
    classes[k]): per-class figures (class_metrics)."""
    classes = model.settings.classes
    masks, prob, presence = _predict(model, frames.images, progress)
    labels = frames.labels if frames.labels.ndim == 4 else frames.labels[..., None]
    if labels.shape[-1] != len(classes) and frames.labels.ndim == 4:
        raise ValueError(f"{len(classes)} classes and {labels.shape[-1]} label channels "
                         "must agree")
    per_class = ({c.name: class_metrics(labels[..., k], masks[..., k])
                  for k, c in enumerate(classes)} if labels.shape[-1] == len(classes) else {})
    metrics, dice = {}, None
    if frames.labels.ndim == 3:  # the nerve's labels: the nerve headline
        nerve = masks[..., model.settings.nerve_index]
        metrics, dice = summarize(frames.labels, nerve), dice_per_image(frames.labels, nerve)
    return Evaluation(metrics, per_class, dice, masks, prob if keep_prob else None, presence)


# ---------------------------------------------------------------- per class (CLASSES.md)


def class_metrics(truth, pred) -> dict:
    """One structure's figures from binary masks (N, H, W).

    per_image_dice: mean Dice over the frames whose truth holds the structure (None when no
    frame does; = dice_present; dice_all counts every frame); pooled_dice over all pixels.
    Detection per frame, as ScanNav's validation counts it: TP truth present + predicted
    present, FN truth present + predicted absent, FP truth absent + predicted present, TN
    neither; detection_rate = TP / (TP + FN), false_positive_rate = FP / (FP + TN) (None when
    the denominator is 0)."""
    t, p = _pair(truth, pred)
    has_t, has_p = t.sum(axis=1) > 0, p.sum(axis=1) > 0
    tp, fn = int((has_t & has_p).sum()), int((has_t & ~has_p).sum())
    fp, tn = int((~has_t & has_p).sum()), int((~has_t & ~has_p).sum())
    inter, total = float((t * p).sum()), float(t.sum() + p.sum())
    dice = _dice_flat(t[has_t], p[has_t])
    return {
        "per_image_dice": float(dice.mean()) if dice.size else None,
        "pooled_dice": _ratio(2 * inter, total, 1.0),
        "tp": tp, "fn": fn, "fp": fp, "tn": tn,
        "detection_rate": _ratio(tp, tp + fn, float("nan")) if tp + fn else None,
        "false_positive_rate": _ratio(fp, fp + tn, float("nan")) if fp + tn else None,
        "n_present": tp + fn,
        "n_absent": fp + tn,
        **dice_counts(t, p),
    }
