"""`edge-train eval` and the run's pictures: score a model with edge.evaluate.score (the one
evaluator), draw training curves and overlays.

`evaluate()` backs `edge-train eval`: any model (run folder, .keras/.h5, .tflite, .onnx) is
opened as a Backend (train.modelio) and scored with its own settings (sidecar or run config;
flags override) on the run's validation subjects (default when given a run folder), all
subjects, or a list. Writes metrics.json and overlays.png (the 4 worst and 4 best frames:
image, truth contour in green, prediction contour in red).
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass

import cv2
import numpy as np

from edge.evaluate import score
from edge.fsutil import atomic_path, check_writable_dir, write_json_atomic
from train import datasets
from train.config import RunFolder, run_of

GRID_EACH = 4  # worst and best frames shown in overlays.png
TRUTH_BGR = (0, 255, 0)
PRED_BGR = (0, 0, 255)
OVERLAY_SCALE = 2  # overlay tiles drawn at 2x the model input for legibility
CURVES_DPI = 100


@dataclass(frozen=True)
class EvalConfig:
    """model: run folder, .keras/.h5, .tflite or .onnx. out: folder for metrics.json +
    overlays.png. data: frames folder (default: the run's). subjects: "val" | "all" | "1,5,7".
    threshold/min_area/presence_threshold: None = the model's (sidecar or run config).
    resize_masks: resize masks whose size differs from their image (default: refuse)."""

    model: str
    out: str
    data: str | None = None
    layout: str | None = None
    nerve_class: int | None = None
    subjects_csv: str | None = None
    subjects: str = "val"
    threshold: float | None = None
    min_area: int | None = None
    presence_threshold: float | None = None
    resize_masks: bool = False


# ---------------------------------------------------------------- plots


def write_curves(history_csv, png) -> None:
    """Loss and validation Dice vs epoch from history.csv (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(history_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]

    def col(name):
        return [float(r[name]) if r.get(name) not in (None, "", "NA") else np.nan  # NA: Keras
                for r in rows]  # CSVLogger, for val keys of a run without validation

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("loss", "val_loss"):
        if key in rows[0]:
            a1.plot(epochs, col(key), marker=".", label=key)
    a1.set_xlabel("epoch")
    a1.set_title("loss")
    a1.legend()
    for key in ("val_dice", "val_pooled_dice", "soft_dice"):
        if key in rows[0]:
            a2.plot(epochs, col(key), marker=".", label=key)
    a2.set_xlabel("epoch")
    a2.set_title("validation Dice (threshold 0.5)")
    a2.set_ylim(0, 1)
    a2.legend()
    fig.tight_layout()
    try:
        with atomic_path(png) as tmp:
            fig.savefig(tmp, dpi=CURVES_DPI)
    finally:
        plt.close(fig)


def _tile(gray: np.ndarray, truth: np.ndarray, pred: np.ndarray, label: str) -> np.ndarray:
    h, w = gray.shape
    big = (w * OVERLAY_SCALE, h * OVERLAY_SCALE)
    img = cv2.cvtColor(cv2.resize(gray, big, interpolation=cv2.INTER_LINEAR_EXACT),
                       cv2.COLOR_GRAY2BGR)
    for m, color in ((truth, TRUTH_BGR), (pred, PRED_BGR)):
        m_big = cv2.resize(m.astype(np.uint8), big, interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(m_big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(img, contours, -1, color, 2)
    cv2.putText(img, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                cv2.LINE_AA)
    return img


def write_overlays(png, x_uint8, y_true, pred, dice, stems) -> None:
    """A grid: top row the GRID_EACH worst frames, bottom row the best (green truth, red
    prediction). Written atomically with OpenCV (no display needed)."""
    order = np.argsort(dice, kind="stable")
    n = min(GRID_EACH, len(order))
    rows = []
    for idx in (order[:n], order[::-1][:n]):
        tiles = [_tile(x_uint8[i], y_true[i], pred[i], f"{stems[i]} dice {dice[i]:.2f}")
                 for i in idx]
        while len(tiles) < GRID_EACH:
            tiles.append(np.zeros_like(tiles[0]))
        rows.append(np.concatenate(tiles, axis=1))
    grid = np.concatenate(rows, axis=0)
    with atomic_path(png) as tmp:
        if not cv2.imwrite(str(tmp), grid):
            raise OSError(f"cannot write {png}")


# ---------------------------------------------------------------- edge-train eval


def _select(samples, subjects: str, run: RunFolder | None):
    if subjects == "all":
        return samples
    if subjects == "val":
        if run is None or run.split is None:
            raise datasets.DataError(
                "--subjects val needs a run folder with split.json next to the model; "
                "pass --subjects all or a list like 1,5,7")
        wanted = set(run.split.val_subjects)
    else:
        wanted = {s.strip() for s in subjects.split(",") if s.strip()}
    chosen = [s for s in samples if s.subject in wanted]
    if not chosen:
        raise datasets.DataError(f"no frames of subjects {sorted(wanted)[:5]} in the data; "
                                 f"check --subjects")
    return chosen


def evaluate(cfg: EvalConfig) -> dict:
    """Score a model on frames; writes out/metrics.json and out/overlays.png; returns metrics."""
    from edge.evaluate import class_posts, score_classes
    from train.config import classes_of
    from train.modelio import open_model, settings_for

    run = run_of(cfg.model)
    data = cfg.data or (run.config.data if run else None)
    if not data:
        raise datasets.DataError("pass --data: the model has no run folder saying which data")
    out = check_writable_dir(cfg.out, "--out")
    nerve_class = cfg.nerve_class or (run.config.nerve_class if run else 1)
    layout = cfg.layout or (run.config.layout if run and not cfg.data else None)
    samples = datasets.find_samples(data, layout, nerve_class, cfg.subjects_csv)
    samples = _select(samples, cfg.subjects, run)
    backend = open_model(cfg.model)
    settings = settings_for(cfg.model, backend, cfg.threshold, cfg.min_area,
                            cfg.presence_threshold)
    frames = datasets.load_labelled(samples, settings.pre, nerve_class,
                                    resize_masks=cfg.resize_masks)
    t0 = time.perf_counter()
    ev = score(backend, frames, settings.pre, settings.post)
    post = settings.post
    result = {**ev.metrics, "model": str(cfg.model), "data": str(data),
              "subjects": datasets.subjects_of(samples), "threshold": post.threshold,
              "min_area": post.min_area, "presence_threshold": post.presence_threshold,
              "settings_from": settings.origin, "input_hw": list(settings.pre.input_hw),
              "seconds_per_frame": (time.perf_counter() - t0) / max(1, len(frames))}
    classes = classes_of(cfg.model)
    if classes:  # CLASSES.md: per-class figures too (the headline and overlays: channel 0)
        ids = tuple(int(c["id"]) for c in classes)
        class_frames = datasets.load_labelled(samples, settings.pre, nerve_class,
                                              resize_masks=cfg.resize_masks, class_ids=ids)
        result["classes"] = score_classes(backend, class_frames, settings.pre, classes,
                                          class_posts(classes, post)).metrics
    write_json_atomic(out / "metrics.json", result)
    write_overlays(out / "overlays.png", frames.images, frames.labels, ev.masks, ev.dice,
                   frames.names)
    return result
