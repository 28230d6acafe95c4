"""Where a conversion gets its model and frames from.

MODEL is either an edge-train run folder (model.keras + config.json + split.json: the same
pre-processing and the same subject split as training) or a bare .keras/.h5 file (then the
data folder is split by subject with --val-fraction/--seed). Calibration frames come from the
TRAINING subjects, validation frames from the VALIDATION subjects, both through
edge.preprocess, the code the device runs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convert.common import load_keras, model_input
from edge.errors import ModelError, UserInputError
from edge.preprocess import DEFAULT_OFFSET, DEFAULT_SCALE, PreprocessConfig, normalize

RUN_MODEL = "model.keras"
RUN_CONFIG = "config.json"
RUN_SPLIT = "split.json"
DEFAULT_VAL_FRACTION = 0.2  # share of SUBJECTS held out when MODEL is a bare file
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Source:
    """A model to convert and the data it belongs to.

    model_path: the Keras file. pre: its pre-processing (input size from the model itself).
    train/val: train.datasets.Sample lists split by subject. run_config: config.json of a
    run folder ({} for a bare file). layout/nerve_class: how the data folder was read.
    """

    model_path: Path
    data_dir: Path | None
    pre: PreprocessConfig
    train: list = field(default_factory=list)
    val: list = field(default_factory=list)
    run_config: dict = field(default_factory=dict)
    layout: str | None = None
    nerve_class: int = 1

    def summary(self) -> dict:
        """Training-data summary for the sidecar and the report."""
        return {
            "data_dir": str(self.data_dir) if self.data_dir else None,
            "layout": self.layout,
            "n_train_frames": len(self.train),
            "n_val_frames": len(self.val),
            "train_subjects": sorted({str(s.subject) for s in self.train}),
            "val_subjects": sorted({str(s.subject) for s in self.val}),
        }


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{path}: cannot read run file ({exc}); re-run edge-train") from exc


def model_file_of(model_arg: str | os.PathLike) -> Path:
    """The Keras file behind MODEL (a run folder or a file)."""
    path = Path(model_arg)
    if path.is_dir():
        inner = path / RUN_MODEL
        if not inner.is_file():
            raise ModelError(
                f"{path}: a folder without {RUN_MODEL}; pass an edge-train run folder or a "
                ".keras file"
            )
        return inner
    return path


def preprocess_for(model, run_config: dict) -> PreprocessConfig:
    """Pre-processing of a model: size from the model, ROI and normalization from its run
    config.

    A run config whose input_hw disagrees with the model is an error naming both (a
    mixed-up run folder would otherwise calibrate on the wrong geometry)."""
    h, w, c = model_input(model)
    cfg_hw = run_config.get("input_hw")
    if cfg_hw is not None and tuple(int(v) for v in cfg_hw) != (h, w):
        raise UserInputError(
            f"run config says input {cfg_hw[0]}x{cfg_hw[1]} but the model expects {h}x{w}; "
            "pass the matching run folder"
        )
    roi = run_config.get("roi")
    return PreprocessConfig(
        input_hw=(h, w),
        roi=tuple(int(v) for v in roi) if roi else None,
        scale=float(run_config.get("scale", DEFAULT_SCALE)),
        offset=float(run_config.get("offset", DEFAULT_OFFSET)),
        channels=c,
    )


def _split_from_run(samples: list, split: dict, data_dir: Path) -> tuple[list, list]:
    train_subj = {str(s) for s in split.get("train_subjects", [])}
    val_subj = {str(s) for s in split.get("val_subjects", [])}
    train = [s for s in samples if str(s.subject) in train_subj]
    val = [s for s in samples if str(s.subject) in val_subj]
    if not val:
        raise UserInputError(
            f"{data_dir}: none of the run's validation subjects ({sorted(val_subj)[:5]}...) "
            "are in this data folder; pass the --data the model was trained on"
        )
    return train, val


def open_source(
    model_arg: str | os.PathLike,
    data_dir: str | os.PathLike | None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = DEFAULT_SEED,
    need_data: bool = True,
):
    """(Keras model, Source) for MODEL + --data. Raises ModelError / UserInputError."""
    from train.datasets import find_samples, split_by_subject

    arg = Path(model_arg)
    model_path = model_file_of(arg)
    run_dir = arg if arg.is_dir() else None
    config_file = run_dir / RUN_CONFIG if run_dir else None
    run_config = _read_json(config_file) if config_file and config_file.is_file() else {}
    model = load_keras(model_path)
    pre = preprocess_for(model, run_config)
    data = data_dir or run_config.get("data")
    data = Path(data) if data else None
    layout = run_config.get("layout")
    nerve_class = int(run_config.get("nerve_class", 1))
    if data is None:
        if need_data:
            raise UserInputError("no data folder: pass --data DIR (the frames the model was "
                                 "trained on)")
        return model, Source(model_path, None, pre, run_config=run_config)
    if not data.is_dir():
        raise UserInputError(f"--data {data}: no such folder; pass the training data folder")
    samples = find_samples(data, layout=layout, nerve_class=nerve_class)
    if not samples:
        raise UserInputError(f"--data {data}: no image/mask pairs found; check the folder")
    split_file = run_dir / RUN_SPLIT if run_dir else None
    if split_file is not None and split_file.is_file():
        train, val = _split_from_run(samples, _read_json(split_file), data)
    else:
        train, val = split_by_subject(samples, val_fraction, seed)
    return model, Source(model_path, data, pre, list(train), list(val), run_config, layout,
                         nerve_class)


def load_frames(samples: list, pre: PreprocessConfig, nerve_class: int = 1
                ) -> tuple[np.ndarray, np.ndarray]:
    """(X float32 N,H,W,C model inputs, Y uint8 N,H,W 0/1) through edge.preprocess."""
    from train.datasets import load_arrays

    if not samples:
        return (np.zeros((0, *pre.input_hw, pre.channels), np.float32),
                np.zeros((0, *pre.input_hw), np.uint8))
    gray, masks = load_arrays(samples, pre, nerve_class)
    check_frames_match(gray, pre, samples[0].image_path)
    x = np.concatenate([normalize(g, pre) for g in gray], axis=0)
    return x, masks


def check_frames_match(gray: np.ndarray, pre: PreprocessConfig, example) -> None:
    """Loaded frames must come out at the model input size; name both when they do not."""
    if gray.ndim != 3 or tuple(gray.shape[1:3]) != tuple(pre.input_hw):
        raise UserInputError(
            f"frames from {example} load as {tuple(gray.shape[1:])} but the model expects "
            f"{pre.input_hw[0]}x{pre.input_hw[1]}; check --data and the model"
        )


def pick_calibration(samples: list, n: int, seed: int) -> list:
    """n seeded training samples (all when fewer): the same frames on every run."""
    if n <= 0 or not samples:
        raise UserInputError(
            f"empty calibration set ({len(samples)} training frames, --calib-frames {n}); "
            "int8 needs real training frames: pass --data with the training subjects"
        )
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(samples), size=min(n, len(samples)), replace=False)
    return [samples[i] for i in sorted(idx)]


def calibration_frames(samples: list, pre: PreprocessConfig, n: int, seed: int) -> np.ndarray:
    """Float32 (n,H,W,C) calibration inputs from training frames, as the device sees them."""
    x, _ = load_frames(pick_calibration(samples, n, seed), pre)
    return x


def postprocess_for(run_config: dict, threshold: float | None = None,
                    min_area: int | None = None, presence_threshold: float | None = None):
    """edge's PostprocessConfig: explicit values, else the run's choice, else edge defaults."""
    from edge.postprocess import PostprocessConfig

    given = {"threshold": threshold, "min_area": min_area,
             "presence_threshold": presence_threshold}
    values = {k: (v if v is not None else run_config.get(k)) for k, v in given.items()}
    return PostprocessConfig(**{k: v for k, v in values.items() if v is not None})
