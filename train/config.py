"""TrainConfig: every training setting in one frozen dataclass with documented defaults.

cli.py builds it from flags; loop.train() takes it; RUN/config.json is its resolved form
(plus the data layout found). Every tool reads a run folder back through ``read_run`` (typed:
TrainConfig + Split), never as raw JSON.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge.errors import UserInputError
from edge.preprocess import DEFAULT_INPUT_HW, DEFAULT_OFFSET, DEFAULT_SCALE, PreprocessConfig
from train.classes import nerve_only

RUN_CONFIG = "config.json"  # the run folder's files (see train/loop.py)
RUN_SPLIT = "split.json"
RUN_MODEL = "model.keras"
STRATEGIES = ("default", "mirrored", "multiworker")
DEFAULT_MODEL = {"base_filters": 16, "depth": 3, "stem_stride": 2, "upsample": "bilinear",
                 "dropout": 0.0, "separable": False, "presence_head": False, "max_filters": 256,
                 "arch": "unet", "deep_supervision": True}


@dataclass(frozen=True)
class TrainConfig:
    """Resolved training configuration.

    data: folder of frames (required). layout: "kaggle" | "folder" | None (detected).
    nerve_class: class id of the nerve in folder-layout masks. subjects_csv: stem,subject CSV.
    classes: the CLASSES.md list (id, name, color, safety) of a multi-class model (one mask
    channel per class, folder layout); None = nerve-only (one channel, nerve_class).
    folds, fold: K-fold cross-validation (folds > 1): subjects go to ``folds`` folds by a
    seeded shuffle, fold ``fold`` (0-based) is held out as the validation set, and the LAST
    epoch's model is kept (no choice of epoch on the held-out frames; patience is ignored).
    folds == 1: train on every frame, keep the last epoch (the logged "val" figures are then
    on the training frames).
    resize_masks: resize masks whose size differs from their image (default: refuse them).
    out: run folder (model.keras, config.json, split.json, history.csv, ...).
    input_hw: model input (H, W); default keeps the Kaggle 580x420 aspect. roi: optional crop.
    scale, offset: input normalization x = pixel * scale + offset (edge.preprocess).
    model: build_unet kwargs, or {"preset": "reference"} for the student reference model.
    epochs, batch: training length and global batch size (split across replicas/workers).
    lr: peak learning rate of the cosine schedule; warmup_epochs: linear warm-up length;
    min_lr_fraction: final lr as a fraction of lr.
    val_fraction, seed: subject split and every random draw.
    patience: early stopping on val per-image Dice (epochs without improvement; 0 = off).
    bce_weight, dice_weight: loss mix; presence_weight: presence-head BCE weight.
    augment: "none" | "flip" | "light" | "strong"; vflip, elastic: extra augmentation options.
    threshold: mask probability threshold for validation metrics (as on the device).
    resume: continue from out/ckpt. init_weights: start from a trained model (.keras/.h5).
    freeze_encoder: train the decoder only (fine-tuning on little data).
    strategy: "default" | "mirrored" | "multiworker" (TF_CONFIG). threads: TF threads (None =
    TF default). max_steps_per_epoch: cap (smoke tests). cache_dir: .npz cache of decoded
    arrays (None = off). verbose: Keras progress (1 bar, 2 one line per epoch, 0 silent).
    """

    data: str
    out: str = "runs/run"
    layout: str | None = None
    nerve_class: int = 1
    classes: tuple[dict[str, Any], ...] | None = None
    folds: int = 0
    fold: int = 0
    subjects_csv: str | None = None
    resize_masks: bool = False
    input_hw: tuple[int, int] = DEFAULT_INPUT_HW
    roi: tuple[int, int, int, int] | None = None
    scale: float = DEFAULT_SCALE
    offset: float = DEFAULT_OFFSET
    model: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_MODEL))
    epochs: int = 40
    batch: int = 16
    lr: float = 2e-3
    warmup_epochs: float = 1.0
    min_lr_fraction: float = 0.01
    val_fraction: float = 0.2
    seed: int = 0
    patience: int = 10
    bce_weight: float = 1.0
    dice_weight: float = 1.0
    presence_weight: float = 0.2
    augment: str = "light"
    vflip: bool = False
    elastic: bool = False
    threshold: float = 0.5
    resume: bool = False
    init_weights: str | None = None
    freeze_encoder: bool = False
    strategy: str = "default"
    threads: int | None = None
    max_steps_per_epoch: int | None = None
    cache_dir: str | None = None
    verbose: int = 1

    @property
    def preprocess(self) -> PreprocessConfig:
        return PreprocessConfig(input_hw=tuple(self.input_hw), roi=self.roi, scale=self.scale,
                                offset=self.offset, channels=1)

    @property
    def presence_head(self) -> bool:
        return bool(self.model.get("presence_head", False))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_hw"] = list(self.input_hw)
        d["roi"] = list(self.roi) if self.roi else None
        d["classes"] = [dict(c) for c in self.classes] if self.classes else None
        return d

    @property
    def class_list(self) -> tuple[dict[str, Any], ...]:
        """The classes the model outputs (nerve-only: the one implicit nerve class)."""
        return tuple(self.classes) if self.classes else nerve_only(self.nerve_class)


# ---------------------------------------------------------------- the run folder, read back


@dataclass(frozen=True)
class Split:
    """split.json: the subjects trained on and the subjects held out."""

    train_subjects: tuple[str, ...]
    val_subjects: tuple[str, ...]


@dataclass(frozen=True)
class RunFolder:
    """An edge-train run folder, read through one typed reader (read_run): every tool (eval,
    convert, bench) gets the same config, split and model path from it."""

    path: Path
    config: TrainConfig
    split: Split | None

    @property
    def model_path(self) -> Path:
        return self.path / RUN_MODEL

    @property
    def name(self) -> str:
        return self.path.resolve().name


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserInputError(f"{path}: cannot read the run's {what} ({e}); re-run edge-train "
                             "or pass a .keras file") from e


def config_from_dict(d: Any, source: Path | str = RUN_CONFIG) -> TrainConfig:
    """TrainConfig from RUN/config.json's dict (unknown keys such as params are ignored)."""
    if not isinstance(d, dict) or not d.get("data"):
        raise UserInputError(f"{source}: not an edge-train config (no 'data' folder); re-run "
                             "edge-train or pass a .keras file")
    known = set(TrainConfig.__dataclass_fields__)
    kw = {k: v for k, v in d.items() if k in known}
    try:
        kw["input_hw"] = tuple(int(v) for v in kw.get("input_hw", DEFAULT_INPUT_HW))
        if kw.get("roi"):
            kw["roi"] = tuple(int(v) for v in kw["roi"])
        if kw.get("classes"):
            kw["classes"] = tuple(dict(c) for c in kw["classes"])
        return TrainConfig(**kw)
    except (TypeError, ValueError) as e:
        raise UserInputError(f"{source}: bad value in the run config ({e}); re-run "
                             "edge-train") from e


def read_split(path: str | os.PathLike) -> Split:
    """RUN/split.json (or any file of that shape, e.g. edge-bench --split)."""
    path = Path(path)
    d = _read_json(path, "split")
    try:
        return Split(tuple(str(s) for s in d.get("train_subjects", [])),
                     tuple(str(s) for s in d["val_subjects"]))
    except (AttributeError, KeyError, TypeError) as e:
        raise UserInputError(f"{path}: no val_subjects list ({e!r}); pass the split.json of "
                             "an edge-train run (RUN/split.json)") from e


def read_run(path: str | os.PathLike) -> RunFolder:
    """The run folder at ``path``; UserInputError naming the file when it is not one."""
    path = Path(path)
    cfg_path = path / RUN_CONFIG
    if not cfg_path.is_file():
        raise UserInputError(f"{path} is not an edge-train run folder (no {RUN_CONFIG}); pass "
                             "the folder edge-train --out wrote, or a model file")
    config = config_from_dict(_read_json(cfg_path, "config"), cfg_path)
    split_path = path / RUN_SPLIT
    return RunFolder(path, config, read_split(split_path) if split_path.is_file() else None)


def write_run(path: str | os.PathLike, resolved: dict[str, Any], split: Split) -> None:
    """RUN/config.json (TrainConfig.to_dict() plus facts such as the layout found) and
    RUN/split.json, atomically: what read_run reads back."""
    from edge.fsutil import write_json_atomic

    path = Path(path)
    write_json_atomic(path / RUN_CONFIG, resolved)
    write_json_atomic(path / RUN_SPLIT, {"train_subjects": list(split.train_subjects),
                                         "val_subjects": list(split.val_subjects)})


def run_of(model: str | os.PathLike) -> RunFolder | None:
    """The run folder a model belongs to: MODEL itself when it is a run folder, else the
    model file's folder when that holds a config.json; None for a bare model file."""
    model = Path(model)
    folder = model if model.is_dir() else model.parent
    return read_run(folder) if (folder / RUN_CONFIG).is_file() else None


def classes_of(model_path) -> tuple[dict[str, Any], ...] | None:
    """The class list of a model file: its sidecar's ``"classes"`` (.tflite/.onnx), else its
    run folder's config (.keras); None = a nerve-only model."""
    from edge.metadata import load_meta, sidecar_path  # in-function: config.py stays light

    path = Path(model_path)
    if sidecar_path(path).is_file():
        found = load_meta(path).classes  # validated edge.metadata.ClassSpecs
        if found:
            return tuple({k: v for k, v in asdict(c).items() if v is not None} for c in found)
    run = run_of(path) if path.suffix in (".keras", ".h5") or path.is_dir() else None
    return tuple(run.config.classes) if run and run.config.classes else None
