"""THE evaluator: score a model (any Backend) on labelled frames, the way the device decides.

    ev = score(backend, frames, pre_cfg, post_cfg)
    ev.metrics["per_image_dice"], ev.metrics["pooled_dice"], ev.metrics["iou"], ...

Each frame goes the device's way: edge.model.preprocess.normalize (the sidecar's normalization) ->
Backend.run -> edge.model.postprocess.split_outputs -> edge.model.postprocess.decide (threshold,
min area, presence gate; temporal smoothing off: frames are independent). Predictions are compared
with the labels at the model input size (labels: edge.model.preprocess.mask_to_input, the same
crop and resize as the frames). ``edge-train eval``, the ``edge-convert`` gate and
``edge-bench accuracy`` all call ``score``: the same model and frames give the same numbers in
every tool. NumPy + OpenCV only (no TensorFlow): a Keras model comes in as a Backend too
(train.modelio.KerasBackend).

Metric conventions (train/losses.py has TF versions, checked against these in tests):

- per-image Dice: 2|A∩B| / (|A| + |B|), and 1 when both masks are empty (as Kaggle scored).
- pooled Dice / IoU: over all pixels of all images at once (1 when everything is empty).
- precision: TP / (TP + FP), 1 when nothing was predicted; recall: TP / (TP + FN), 1 when
  there is nothing to find.
- detection rate: among images whose truth has a nerve, the share where the prediction
  overlaps it (None when no image has a nerve).
- presence accuracy: share of images where "any nerve predicted" equals "any nerve in truth".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from edge.model.postprocess import PostprocessConfig, decide, split_class_outputs, split_outputs
from edge.model.preprocess import PreprocessConfig, normalize

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


def summarize(y_true, y_pred) -> dict:
    """All metrics of binary masks (N, H, W) as plain floats/ints (JSON-ready)."""
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
    }


# ---------------------------------------------------------------- frames


@dataclass(frozen=True)
class LabelledFrames:
    """Frames at the model input geometry (the crop + resize of edge.model.preprocess done once:
    train.datasets.load_labelled reads a data folder into this).

    images: (N, H, W) uint8 gray. labels: (N, H, W) uint8 0/1, or (N, H, W, C) for a
    multi-class model (channel k = classes[k]; score_classes). names: one per frame."""

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
    """metrics: summarize() of the decided masks. dice: (N,) per-image Dice. masks: (N, H, W)
    uint8 0/1 decisions. prob: (N, H, W) float32 probability maps (only with keep_prob).
    presence: (N,) presence scores when the model has that output."""

    metrics: dict
    dice: np.ndarray
    masks: np.ndarray
    prob: np.ndarray | None = None
    presence: np.ndarray | None = None


def _batches(backend, n: int):
    """Frame index ranges: one frame at a time (as on the device) unless the backend says it
    takes batches (``max_batch``, the Keras backend): same numbers, fewer calls."""
    step = max(1, int(getattr(backend, "max_batch", 1) or 1))
    return [(i, min(n, i + step)) for i in range(0, n, step)]


def _per_frame(outputs: list[np.ndarray], count: int):
    """Batched outputs -> one output list per frame, shaped as a batch-1 run gives them."""
    outs = [np.asarray(o) for o in outputs]
    return [[o[j : j + 1] for o in outs] for j in range(count)]


def score(backend, frames: LabelledFrames, pre: PreprocessConfig, post: PostprocessConfig,
          keep_prob: bool = False, progress: Callable[[str], None] | None = None
          ) -> Evaluation:
    """Run ``backend`` on every frame and score the decided masks against the labels."""
    if frames.labels.ndim != 3:
        raise ValueError("score() takes (N, H, W) nerve labels; per-class labels "
                         "(N, H, W, C) go to score_classes()")
    n = len(frames)
    masks = np.zeros(frames.labels.shape, np.uint8)
    prob_all = np.zeros(frames.labels.shape, np.float32) if keep_prob else None
    presence_all: list[float | None] = []
    for lo, hi in _batches(backend, n):
        x = np.concatenate([normalize(g, pre) for g in frames.images[lo:hi]], axis=0)
        for j, outs in enumerate(_per_frame(backend.run(x), hi - lo)):
            prob, presence = split_outputs(outs)
            masks[lo + j] = decide(prob, presence, post)
            presence_all.append(presence)
            if prob_all is not None:
                prob_all[lo + j] = prob
        if progress and hi // PROGRESS_EVERY > lo // PROGRESS_EVERY:
            progress(f"scored {hi}/{n} frames")
    has_presence = n > 0 and all(p is not None for p in presence_all)
    return Evaluation(metrics=summarize(frames.labels, masks),
                      dice=dice_per_image(frames.labels, masks), masks=masks, prob=prob_all,
                      presence=np.asarray(presence_all, np.float32) if has_presence else None)


# ---------------------------------------------------------------- per class (CLASSES.md)


def class_metrics(truth, pred) -> dict:
    """One structure's figures from binary masks (N, H, W).

    per_image_dice: mean Dice over the frames whose truth holds the structure (None when no
    frame does); pooled_dice over all pixels. Detection per frame, as ScanNav's validation
    counts it: TP truth present + predicted present, FN truth present + predicted absent, FP
    truth absent + predicted present, TN neither; detection_rate = TP / (TP + FN),
    false_positive_rate = FP / (FP + TN) (None when the denominator is 0)."""
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
    }


@dataclass
class ClassEvaluation:
    """metrics: class name -> class_metrics(). masks: (N, H, W, C) uint8 0/1 decisions.
    prob: (N, H, W, C) float32 probabilities (only with keep_prob)."""

    metrics: dict
    masks: np.ndarray
    prob: np.ndarray | None = None


def score_classes(backend, frames: LabelledFrames, pre: PreprocessConfig, classes,
                  posts: list[PostprocessConfig], keep_prob: bool = False) -> ClassEvaluation:
    """Score a C-channel model per class: channel k goes through edge.model.postprocess.decide with
    posts[k] (the class's threshold and min area; no presence gate) and is compared with
    labels[..., k]. classes: the sidecar's list (names key the result). A nerve-only model
    scores as one class with (N, H, W) labels."""
    labels = frames.labels if frames.labels.ndim == 4 else frames.labels[..., None]
    n, c = len(frames), labels.shape[-1]
    if not len(classes) == len(posts) == c:
        raise ValueError(f"{len(classes)} classes, {len(posts)} post-processing settings and "
                         f"{c} label channels must agree")
    masks = np.zeros(labels.shape, np.uint8)
    prob_all = np.zeros(labels.shape, np.float32) if keep_prob else None
    for lo, hi in _batches(backend, n):
        x = np.concatenate([normalize(g, pre) for g in frames.images[lo:hi]], axis=0)
        for j, outs in enumerate(_per_frame(backend.run(x), hi - lo)):
            prob, _ = split_class_outputs(outs, c)  # no presence gate per class here
            for k in range(c):
                masks[lo + j, ..., k] = decide(prob[..., k], None, posts[k])
            if prob_all is not None:
                prob_all[lo + j] = prob
    metrics = {cls["name"]: class_metrics(labels[..., k], masks[..., k])
               for k, cls in enumerate(classes)}
    return ClassEvaluation(metrics, masks, prob_all)


def class_posts(classes, post: PostprocessConfig) -> list[PostprocessConfig]:
    """Per-class post-processing: the class's own threshold / min_area over the model's."""
    return [replace(post, threshold=float(c.get("threshold", post.threshold)),
                    min_area=int(c.get("min_area", post.min_area))) for c in classes]
