"""TrainConfig: every training setting in one frozen dataclass with documented defaults.

cli.py builds it from flags; loop.train() takes it; RUN/config.json is its resolved form
(plus the data layout found). The convert helper reads config.json's keys "data", "layout",
"nerve_class", "input_hw", "scale", "offset", "val_fraction", "seed" and "model": keep them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from edge.preprocess import DEFAULT_INPUT_HW, DEFAULT_OFFSET, DEFAULT_SCALE, PreprocessConfig

STRATEGIES = ("default", "mirrored", "multiworker")
DEFAULT_MODEL = {"base_filters": 16, "depth": 3, "stem_stride": 2, "upsample": "bilinear",
                 "dropout": 0.0, "separable": False, "presence_head": False, "max_filters": 256}


@dataclass(frozen=True)
class TrainConfig:
    """Resolved training configuration.

    data: folder of frames (required). layout: "kaggle" | "folder" | None (detected).
    nerve_class: class id of the nerve in folder-layout masks. subjects_csv: stem,subject CSV.
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
    subjects_csv: str | None = None
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
        return d


def config_from_dict(d: dict[str, Any]) -> TrainConfig:
    """Inverse of to_dict (reads RUN/config.json back; unknown keys are ignored)."""
    known = set(TrainConfig.__dataclass_fields__)
    kw = {k: v for k, v in d.items() if k in known}
    kw["input_hw"] = tuple(kw.get("input_hw", DEFAULT_INPUT_HW))
    if kw.get("roi"):
        kw["roi"] = tuple(kw["roi"])
    return TrainConfig(**kw)
