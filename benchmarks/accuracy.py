"""Segmentation accuracy of model files on a labelled dataset, through edge's own processing.

Each frame goes exactly the way the device takes it: edge.preprocess (geometry + the
sidecar's normalization) -> Backend.run -> edge.postprocess.split_outputs -> binarize with
the sidecar's threshold, min_area and presence threshold (temporal smoothing off: frames
are independent). Predictions are compared with the labels at the model input size (labels
go through edge.preprocess.mask_to_input, the same crop and resize as the frames).

Metrics (train.metrics.summarize): mean per-image Dice (an image with no nerve in truth and
prediction scores 1), pooled Dice over all pixels, IoU, precision, recall, pixel accuracy and
detection rate (share of frames with a nerve whose prediction overlaps it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from benchmarks.latency import Progress, stderr_progress
from benchmarks.machine import describe_machine
from benchmarks.runtime import open_model, preprocess_config
from edge.errors import UserInputError
from edge.metadata import load_meta, sha256_file
from edge.preprocess import normalize

PROGRESS_EVERY = 200  # frames between progress lines


@dataclass(frozen=True)
class AccuracyConfig:
    """data_dir: Kaggle (SUBJECT_IMAGE + _mask) or folder (images/ + masks/) layout.
    split: a training run's split.json; its val_subjects are evaluated (None = all frames).
    subjects: explicit subject ids instead of a split. max_images: first N frames only
    (quick checks). threads/backend: as for latency."""

    data_dir: str
    layout: str | None = None
    nerve_class: int = 1
    split: str | None = None
    subjects: tuple[str, ...] | None = None
    max_images: int | None = None
    threads: int | None = 1
    backend: str | None = None


def read_split_subjects(split_path: str | Path) -> tuple[str, ...]:
    """val_subjects of a training run's split.json."""
    p = Path(split_path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
        subjects = doc["val_subjects"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserInputError(f"--split {p}: cannot read val_subjects ({exc}); pass the "
                             "split.json of a training run (RUN/split.json)") from exc
    return tuple(str(s) for s in subjects)


def select_samples(cfg: AccuracyConfig) -> tuple[list, tuple[str, ...] | None]:
    """The samples to evaluate and the subject filter applied (None = all)."""
    from train.datasets import find_samples  # NumPy/OpenCV only, no TensorFlow

    samples = find_samples(cfg.data_dir, layout=cfg.layout, nerve_class=cfg.nerve_class)
    wanted = cfg.subjects or (read_split_subjects(cfg.split) if cfg.split else None)
    if wanted is not None:
        keep = set(wanted)
        samples = [s for s in samples if s.subject in keep]
        if not samples:
            raise UserInputError(f"no frame of {cfg.data_dir} belongs to subjects "
                                 f"{', '.join(sorted(keep)[:5])}...; check --data and --split")
    if cfg.max_images:
        samples = samples[: cfg.max_images]
    return samples, wanted


class ArrayCache:
    """Frames and labels at one input geometry, loaded once and shared by the models."""

    def __init__(self, samples, nerve_class: int):
        self.samples, self.nerve_class, self._arrays = samples, nerve_class, {}

    def get(self, pre_cfg):
        from train.datasets import load_arrays

        key = (pre_cfg.input_hw, pre_cfg.roi)
        if key not in self._arrays:
            geometry = replace(pre_cfg, channels=1)
            self._arrays[key] = load_arrays(self.samples, geometry, self.nerve_class)
        return self._arrays[key]


def postprocess_config(meta):
    """The sidecar's post-processing, temporal smoothing off (frames are independent)."""
    from edge.postprocess import PostprocessConfig

    return PostprocessConfig(threshold=meta.threshold, min_area=meta.min_area,
                             presence_threshold=meta.presence_threshold)


def predict_mask(model, x: np.ndarray, post_cfg) -> np.ndarray:
    """One normalized input -> uint8 0/1 mask at the model input size, the edge way."""
    from edge.postprocess import binarize, split_outputs

    prob, presence = split_outputs(model.run(x))
    mask = binarize(prob, post_cfg)
    if presence is not None and presence < post_cfg.presence_threshold:
        mask = np.zeros_like(mask)
    return mask


def predict_all(model, gray: np.ndarray, pre_cfg, post_cfg, name: str,
                progress: Progress) -> np.ndarray:
    preds = np.zeros(gray.shape, np.uint8)
    for i in range(len(gray)):
        preds[i] = predict_mask(model, normalize(gray[i], pre_cfg), post_cfg)
        if (i + 1) % PROGRESS_EVERY == 0:
            progress(f"accuracy: {name} {i + 1}/{len(gray)} frames")
    return preds


def evaluate_model(path: str | Path, cache: ArrayCache, cfg: AccuracyConfig,
                   progress: Progress = stderr_progress) -> dict:
    """One accuracy row (metrics + what produced them)."""
    from train.metrics import summarize

    path = Path(path)
    t0 = time.perf_counter()
    model = open_model(path, cfg.backend, cfg.threads)
    meta = load_meta(path)
    pre_cfg, post_cfg = preprocess_config(model, path), postprocess_config(meta)
    gray, labels = cache.get(pre_cfg)
    preds = predict_all(model, gray, pre_cfg, post_cfg, path.name, progress)
    return {"model": path.name, "path": str(path), "format": path.suffix.lstrip("."),
            "sha256": sha256_file(path), "backend_name": model.name, "threads": cfg.threads,
            "input_hw": list(pre_cfg.input_hw), "threshold": post_cfg.threshold,
            "min_area": post_cfg.min_area, "status": "ok", **summarize(labels, preds),
            "seconds": time.perf_counter() - t0}


def _guarded(path, cache, cfg, progress) -> dict:
    from train.datasets import DataError

    progress(f"accuracy: {Path(path).name} on {len(cache.samples)} frames ...")
    try:
        row = evaluate_model(path, cache, cfg, progress)
    except DataError:
        raise  # bad data: the whole run is wrong, not this model
    except Exception as exc:  # a failed variant is reported, never dropped
        progress(f"accuracy: {Path(path).name} FAILED: {exc}")
        return {"model": Path(path).name, "path": str(path), "status": "failed",
                "error": f"{type(exc).__name__}: {exc}"}
    progress(f"accuracy: {row['model']} per-image Dice {row['per_image_dice']:.4f}, "
             f"pooled Dice {row['pooled_dice']:.4f}")
    return row


def run_accuracy(models: Sequence[str | Path], cfg: AccuracyConfig,
                 progress: Progress = stderr_progress) -> dict:
    samples, subjects = select_samples(cfg)
    cache = ArrayCache(samples, cfg.nerve_class)
    rows = [_guarded(m, cache, cfg, progress) for m in models]
    return {"kind": "accuracy", "machine": describe_machine(), "config": asdict(cfg),
            "dataset": {"data_dir": str(cfg.data_dir), "n_images": len(samples),
                        "subjects": sorted({s.subject for s in samples}),
                        "subject_filter": list(subjects) if subjects else None},
            "results": rows}
