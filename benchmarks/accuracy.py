"""Segmentation accuracy of model files on a labelled dataset, through the kit's one evaluator.

Each model is opened as a Backend (train.modelio: TFLite/ONNX through edge.model.backends, Keras
through its KerasBackend) and scored with edge.model.evaluate.score, with the model's own settings
(the sidecar's normalization, threshold, min area and presence threshold; flags override):
the same function edge-train eval and the edge-convert gate call, so the same model and frames
give the same numbers in every tool. Labels go through edge.model.preprocess.mask_to_input, the
same crop and resize as the frames.

Metrics (edge.model.evaluate.summarize): mean per-image Dice (an image with no nerve in truth and
prediction scores 1), pooled Dice over all pixels, IoU, precision, recall, pixel accuracy and
detection rate (share of frames with a nerve whose prediction overlaps it).

A multi-class model (a ``"classes"`` list in its sidecar or run config, CLASSES.md) is scored
per class by the same edge.model.evaluate.score: the row's ``classes`` holds each class's
per-image Dice, pooled Dice and per-frame detection (TP/FN/FP/TN, detection and
false-positive rates); its per_image_dice / pooled_dice are the means over classes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.latency import Progress, stderr_progress
from benchmarks.machine import describe_machine
from benchmarks.runtime import check_model_path, resolve_backend
from edge.deps import MissingExtra
from edge.errors import UserInputError
from edge.model.evaluate import score
from edge.model.metadata import sha256_file
from edge.model.settings import Overrides


@dataclass(frozen=True)
class AccuracyConfig:
    """data_dir: Kaggle (SUBJECT_IMAGE + _mask) or folder (images/ + masks/) layout.
    split: a training run's split.json; its val_subjects are evaluated (None = all frames).
    subjects: explicit subject ids instead of a split. max_images: first N frames only
    (quick checks). subjects_csv/resize_masks: as for edge-train. threads/backend: as for
    latency. threshold/min_area/presence_threshold:
    None = each model's sidecar."""

    data_dir: str
    layout: str | None = None
    nerve_class: int = 1
    subjects_csv: str | None = None
    resize_masks: bool = False
    split: str | None = None
    subjects: tuple[str, ...] | None = None
    max_images: int | None = None
    threads: int | None = 1
    backend: str | None = None
    threshold: float | None = None
    min_area: int | None = None
    presence_threshold: float | None = None


def select_samples(cfg: AccuracyConfig) -> tuple[list, tuple[str, ...] | None]:
    """The samples to evaluate and the subject filter applied (None = all)."""
    from train.config import read_split
    from train.datasets import find_samples  # NumPy/OpenCV only, no TensorFlow

    samples = find_samples(cfg.data_dir, cfg.layout, cfg.nerve_class, cfg.subjects_csv)
    wanted = cfg.subjects or (read_split(cfg.split).val_subjects if cfg.split else None)
    if wanted is not None:
        keep = set(wanted)
        samples = [s for s in samples if s.subject in keep]
        if not samples:
            raise UserInputError(f"no frame of {cfg.data_dir} belongs to subjects "
                                 f"{', '.join(sorted(keep)[:5])}...; check --data and --split")
    if cfg.max_images:
        samples = samples[: cfg.max_images]
    return samples, wanted


class FrameCache:
    """Labelled frames at one input geometry, loaded once and shared by the models."""

    def __init__(self, samples, nerve_class: int, resize_masks: bool = False):
        self.samples, self.nerve_class, self._frames = samples, nerve_class, {}
        self.resize_masks = resize_masks

    def get(self, pre_cfg, class_ids: tuple[int, ...] | None = None):
        from train.datasets import load_labelled

        key = (pre_cfg.input_hw, pre_cfg.roi, class_ids)
        if key not in self._frames:
            self._frames[key] = load_labelled(self.samples, pre_cfg, self.nerve_class,
                                              resize_masks=self.resize_masks,
                                              class_ids=class_ids)
        return self._frames[key]


def class_figures(model, cache: FrameCache) -> dict:
    """A class-list model's accuracy fields: per class, and the means over classes."""
    ids = tuple(c.id for c in model.settings.classes)
    per_class = score(model, cache.get(model.settings.pre, ids)).classes
    dices = [m["per_image_dice"] for m in per_class.values() if m["per_image_dice"] is not None]
    return {"classes": per_class, "per_image_dice": sum(dices) / len(dices) if dices else None,
            "pooled_dice": sum(m["pooled_dice"] for m in per_class.values()) / len(per_class),
            "n_images": len(cache.samples)}


def evaluate_model(path: str | Path, cache: FrameCache, cfg: AccuracyConfig,
                   progress: Progress = stderr_progress) -> dict:
    """One accuracy row (metrics + what produced them)."""
    from train.modelio import open_seg_model, settings_origin

    path = Path(path)
    t0 = time.perf_counter()
    check_model_path(path)
    model = open_seg_model(path, Overrides(threshold=cfg.threshold, min_area=cfg.min_area,
                                           presence_threshold=cfg.presence_threshold),
                           resolve_backend(path, cfg.backend), cfg.threads)
    st = model.settings
    if model.meta.classes:  # a class list (CLASSES.md): scored per class
        figures = class_figures(model, cache)
    else:
        figures = score(model, cache.get(st.pre),
                        progress=lambda line: progress(f"accuracy: {path.name} {line}")).metrics
    return {"model": path.name, "path": str(path), "format": path.suffix.lstrip("."),
            "sha256": sha256_file(path), "backend_name": model.backend.name,
            "threads": cfg.threads, "input_hw": list(st.input_hw), "threshold": st.threshold,
            "min_area": st.min_area, "presence_threshold": st.presence_threshold,
            "settings_from": settings_origin(path), "status": "ok", **figures,
            "seconds": time.perf_counter() - t0}


def _guarded(path, cache, cfg, progress) -> dict:
    from train.datasets import DataError

    progress(f"accuracy: {Path(path).name} on {len(cache.samples)} frames ...")
    try:
        row = evaluate_model(path, cache, cfg, progress)
    except (DataError, MissingExtra):
        raise  # bad data or a missing install: the whole run is wrong, not this model
    except Exception as exc:  # a failed variant is reported, never dropped
        progress(f"accuracy: {Path(path).name} FAILED: {exc}")
        return {"model": Path(path).name, "path": str(path), "status": "failed",
                "error": f"{type(exc).__name__}: {exc}"}
    progress(f"accuracy: {row['model']} per-image Dice {row['per_image_dice']:.4f}, "
             f"pooled Dice {row['pooled_dice']:.4f}")
    return row


def run_accuracy(models: Sequence[str | Path], cfg: AccuracyConfig,
                 progress: Progress = stderr_progress) -> dict:
    from train.datasets import portable_path

    samples, subjects = select_samples(cfg)
    cache = FrameCache(samples, cfg.nerve_class, cfg.resize_masks)
    rows = [_guarded(m, cache, cfg, progress) for m in models]
    return {"kind": "accuracy", "machine": describe_machine(), "config": asdict(cfg),
            "dataset": {"data_dir": portable_path(cfg.data_dir), "n_images": len(samples),
                        "subjects": sorted({s.subject for s in samples}),
                        "subject_filter": list(subjects) if subjects else None},
            "results": rows}
