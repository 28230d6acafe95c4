"""Segmentation metrics in NumPy (no TensorFlow: benchmarks use them on device outputs).

Inputs are binary masks shaped (N, H, W) (anything > 0 counts as nerve). Conventions, the same
in the TF versions (train/losses.py) and checked against them in tests:

- per-image Dice: 2|A∩B| / (|A| + |B|), and 1 when both masks are empty (as Kaggle scored).
- pooled Dice / IoU: over all pixels of all images at once (1 when everything is empty).
- precision: TP / (TP + FP), 1 when nothing was predicted; recall: TP / (TP + FN), 1 when
  there is nothing to find.
- detection rate: among images whose truth has a nerve, the share where the prediction
  overlaps it (None when no image has a nerve).
- presence accuracy: share of images where "any nerve predicted" equals "any nerve in truth".
"""

from __future__ import annotations

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
)


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


def dice_per_image(y_true, y_pred) -> np.ndarray:
    """(N,) hard Dice per image; 1.0 where truth and prediction are both empty."""
    return _dice_flat(*_pair(y_true, y_pred))


def _dice_flat(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    inter = (t * p).sum(axis=1)
    den = t.sum(axis=1) + p.sum(axis=1)
    return np.where(den > 0, 2.0 * inter / np.maximum(den, 1.0), 1.0)


def confusion(y_true, y_pred) -> dict[str, float]:
    """Pixel counts tp, fp, fn, tn pooled over all images."""
    return _confusion_flat(*_pair(y_true, y_pred))


def _confusion_flat(t: np.ndarray, p: np.ndarray) -> dict[str, float]:
    tp = float((t * p).sum())
    fp = float(((1 - t) * p).sum())
    fn = float((t * (1 - p)).sum())
    return {"tp": tp, "fp": fp, "fn": fn, "tn": float(t.size) - tp - fp - fn}


def summarize(y_true, y_pred) -> dict:
    """All metrics as plain floats/ints (JSON-ready); see the module docstring."""
    t, p = _pair(y_true, y_pred)
    c = _confusion_flat(t, p)
    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
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


def binarize(prob, threshold: float = 0.5, presence=None, presence_threshold: float = 0.5):
    """Probabilities (N,H,W[,1]) -> uint8 0/1 masks (N,H,W) (pixel > threshold); with presence
    (N,) or (N,1), masks of frames whose presence is below presence_threshold are emptied."""
    m = np.asarray(prob)
    if m.ndim == 4:
        m = m[..., 0]
    out = (m > threshold).astype(np.uint8)  # strictly above, as edge.postprocess.binarize
    if presence is not None:
        keep = np.asarray(presence).reshape(-1) >= presence_threshold
        out[~keep] = 0
    return out
