"""Where a conversion gets its model and frames from.

MODEL is either an edge-train run folder (model.keras + config.json + split.json: the same
pre-processing and the same subject split as training) or a bare .keras/.h5 file (then the
data folder is split by subject with --val-fraction/--seed). Calibration frames come from the
TRAINING subjects, validation frames from the VALIDATION subjects, both through
edge.model.preprocess, the code the device runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.errors import UserInputError
from edge.model.evaluate import LabelledFrames
from edge.model.postprocess import PostprocessConfig
from edge.model.preprocess import PreprocessConfig, normalize
from edge.model.settings import Overrides, Settings
from train.config import RunFolder, run_of
from train.datasets import portable_path

DEFAULT_VAL_FRACTION = 0.2  # share of SUBJECTS held out when MODEL is a bare file
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Source:
    """A model to convert and the data it belongs to.

    model_path: the Keras file. run: its edge-train run folder (None for a bare file).
    settings: its resolved settings (edge.model.settings via train.modelio: flags, else the
    run's config, else defaults; input size from the model itself); pre/post: theirs. train/val:
    train.datasets.Sample lists split by subject. layout/nerve_class: how the data was read.
    classes: the run's class list (CLASSES.md) of a multi-class model; None = nerve-only.
    """

    model_path: Path
    data_dir: Path | None
    settings: Settings
    run: RunFolder | None = None
    train: list = field(default_factory=list)
    val: list = field(default_factory=list)
    layout: str | None = None
    nerve_class: int = 1
    classes: tuple | None = None

    @property
    def pre(self) -> PreprocessConfig:
        return self.settings.pre

    @property
    def post(self) -> PostprocessConfig:
        return self.settings.post

    @property
    def class_ids(self) -> tuple[int, ...] | None:
        return tuple(int(c["id"]) for c in self.classes) if self.classes else None

    def summary(self) -> dict:
        """Training-data summary for the sidecar and the report (no absolute paths)."""
        return {
            "data_dir": portable_path(self.data_dir),
            "layout": self.layout,
            "n_train_frames": len(self.train),
            "n_val_frames": len(self.val),
            "train_subjects": sorted({str(s.subject) for s in self.train}),
            "val_subjects": sorted({str(s.subject) for s in self.val}),
        }


def check_run_input(run: RunFolder | None, input_hw: tuple[int, int]) -> None:
    """A run config whose input_hw disagrees with the model is an error naming both (a
    mixed-up run folder would otherwise calibrate on the wrong geometry)."""
    if run is None:
        return
    cfg_hw = tuple(run.config.input_hw)
    if cfg_hw != tuple(input_hw):
        raise UserInputError(
            f"run config says input {cfg_hw[0]}x{cfg_hw[1]} but the model expects "
            f"{input_hw[0]}x{input_hw[1]}; pass the matching run folder")


def _split_from_run(samples: list, run: RunFolder, data_dir: Path) -> tuple[list, list]:
    train_subj, val_subj = set(run.split.train_subjects), set(run.split.val_subjects)
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
    post_overrides: dict | None = None,
):
    """(KerasBackend, Source) for MODEL + --data. The Keras model is ``backend.model``.
    post_overrides: threshold / min_area / presence_threshold given on the command line.
    Raises ModelError / UserInputError."""
    from train.datasets import find_samples, split_by_subject
    from train.modelio import KerasBackend, keras_file, model_meta, seg_model

    model_path = keras_file(model_arg)
    run = run_of(model_arg)
    backend = KerasBackend.open(model_path)
    check_run_input(run, backend.input_hw)
    settings = seg_model(backend, model_meta(model_arg),
                         Overrides(**(post_overrides or {}))).settings
    data = data_dir or (run.config.data if run else None)
    data = Path(data) if data else None
    layout = run.config.layout if run else None
    nerve_class = run.config.nerve_class if run else 1
    if data is None:
        if need_data:
            raise UserInputError("no data folder: pass --data DIR (the frames the model was "
                                 "trained on)")
        return backend, Source(model_path, None, settings, run)
    if not data.is_dir():
        raise UserInputError(f"--data {data}: no such folder; pass the training data folder")
    samples = find_samples(data, layout=layout, nerve_class=nerve_class)
    if run is not None and run.split is not None:
        train, val = _split_from_run(samples, run, data)
    else:
        train, val = split_by_subject(samples, val_fraction, seed)
    classes = run.config.classes if run else None
    return backend, Source(model_path, data, settings, run, list(train), list(val), layout,
                           nerve_class, classes)


def labelled_frames(samples: list, pre: PreprocessConfig, nerve_class: int = 1,
                    class_ids: tuple[int, ...] | None = None) -> LabelledFrames:
    """The evaluator's frames (uint8 at the model input size + labels) of these samples;
    with class_ids the labels are (N, H, W, C), one channel per class."""
    from train.datasets import load_labelled

    return load_labelled(samples, pre, nerve_class, class_ids=class_ids)


def load_frames(samples: list, pre: PreprocessConfig, nerve_class: int = 1
                ) -> tuple[np.ndarray, np.ndarray]:
    """(X float32 N,H,W,C model inputs, Y uint8 N,H,W 0/1) through edge.model.preprocess."""
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
