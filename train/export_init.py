"""`edge-train export-init RUN --out FILE.keras`: an edge-train run's float Keras model as a
fine-tune starting point, with the sidecar FILE.json that says what it is.

This is how edge/models/nerve_default_float.keras (`edge-train --init-weights default`) is
made from the run the shipped default was trained in:

    edge-train export-init runs/final/default --out edge/models/nerve_default_float.keras \\
        --name nerve-unet-b12-all39-float --frame-list docs/data/kaggle-nerve-2036.txt

The sidecar is an edge.model.metadata sidecar (sha256 of the .keras file, input size,
normalization, threshold, classes) whose ``extra`` holds the architecture exactly as the run's
config.json "model" dict has it (train.initmodel reads it back) and the provenance: the run,
this command, the training data (folder name, layout, subjects, frame counts, frame list) and
the run's validation figures. Nothing of the build machine's paths is written.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from edge.errors import UserInputError
from edge.fsutil import atomic_path
from edge.model.metadata import ModelMeta, write_meta
from train.config import RUN_CONFIG, read_run

DATA_DIR_PARTS = 2  # "kaggle-nerve/train": the data folder's name without the machine's path
TRAINING_KEYS = ("layout", "nerve_class", "seed", "folds", "fold", "val_fraction", "epochs",
                 "batch", "lr", "augment", "n_train_frames", "n_val_frames", "init_weights")
VALIDATION_KEYS = ("per_image_dice", "pooled_dice", "iou", "detection_rate", "best_epoch",
                   "epochs_run", "params", "macs")
MAX_SHIPPED_MB = 5.0  # the package's budget for the fine-tune starting point


def _data_name(data: str) -> str:
    return "/".join(Path(data).parts[-DATA_DIR_PARTS:])


def _read(path: Path) -> dict:
    try:
        d = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        d = {}
    return d if isinstance(d, dict) else {}


def provenance(run, raw: dict, args, argv: list[str]) -> dict[str, Any]:
    """Where the model comes from: run, command, training data, validation figures."""
    training = {"data_dir": _data_name(run.config.data),
                **{k: raw[k] for k in TRAINING_KEYS if raw.get(k) is not None}}
    if run.split is not None:
        training.update(train_subjects=list(run.split.train_subjects),
                        val_subjects=list(run.split.val_subjects))
    if args.frame_list:
        training["frame_list"] = args.frame_list
    if raw.get("rebuilt_from"):
        training["rebuilt_from"] = Path(str(raw["rebuilt_from"])).name
    metrics = _read(run.path / "metrics.json")
    argv = [Path(a).name if Path(a).is_absolute() else a for a in argv]  # no machine paths
    validation = {k: metrics[k] for k in VALIDATION_KEYS if k in metrics}
    if raw.get("folds") == 1:  # every frame trained: these are not held-out figures
        validation["frames"] = "training frames (--folds 1): a sanity figure, not accuracy"
    return {"run": run.name, "command": "edge-train export-init " + shlex.join(argv),
            "note": args.note, "training_data": training, "validation": validation}


def export_init(args, argv: list[str]) -> Path:
    """RUN/model.keras without its optimizer state (a fine-tune starts a fresh optimizer; a
    third of the size) to args.out, and its sidecar; returns the .keras path."""
    run = read_run(args.run)
    out = Path(args.out)
    if out.suffix != ".keras":
        raise UserInputError(f"--out {out}: name a .keras file (its sidecar goes next to it)")
    if not run.model_path.is_file():
        raise UserInputError(f"{run.path}: no {run.model_path.name}; train the run first")
    raw = _read(run.path / RUN_CONFIG)
    c = run.config
    out.parent.mkdir(parents=True, exist_ok=True)
    from train.modelio import load_keras

    model = load_keras(run.model_path)
    with atomic_path(out) as tmp:  # keeps the .keras suffix Keras picks the format by
        model.save(str(tmp))  # loaded uncompiled: no optimizer state to save
    meta = ModelMeta(
        name=args.name or run.name, version=args.model_version, input_hw=tuple(c.input_hw),
        scale=c.scale, offset=c.offset, threshold=c.threshold, classes=c.classes,
        extra={"format": "keras", "roi": list(c.roi) if c.roi else None,
               "model": dict(c.model), **provenance(run, raw, args, argv)})
    write_meta(out, meta)
    return out
