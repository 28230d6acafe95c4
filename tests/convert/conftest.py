"""Fixtures for the conversion tests: a tiny Kaggle-layout dataset (bright ellipses on speckle,
6 subjects) and a tiny U-Net trained on it for a few seconds, saved as an edge-train style
run folder (model.keras + config.json + split.json). Built once per session in tmp."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import train  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow loads)

FRAME_HW = (64, 96)  # synthetic frame (rows, cols); the model sees it at half size
MODEL_HW = (32, 48)
N_SUBJECTS = 6
FRAMES_PER_SUBJECT = 8
VAL_FRACTION = 0.3
TRAIN_EPOCHS = 25  # a few seconds on 2 cores; enough for Dice well above chance


def ellipse_frame(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Speckled gray frame with one bright ellipse; the mask is the ellipse (0/255)."""
    h, w = FRAME_HW
    img = np.clip(rng.normal(70, 25, size=(h, w)), 0, 255).astype(np.uint8)
    img[rng.random((h, w)) < 0.003] = 255  # sparse white speckle: the full 8-bit range
    img[0, 0] = 0
    mask = np.zeros((h, w), np.uint8)
    center = (int(rng.integers(20, w - 20)), int(rng.integers(16, h - 16)))
    axes = (int(rng.integers(9, 16)), int(rng.integers(6, 11)))
    cv2.ellipse(mask, center, axes, float(rng.integers(0, 180)), 0, 360, 255, -1)
    img[mask > 0] = np.clip(img[mask > 0].astype(int) + 110, 0, 250).astype(np.uint8)
    return img, mask


def write_dataset(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for s in range(1, N_SUBJECTS + 1):
        for i in range(1, FRAMES_PER_SUBJECT + 1):
            img, mask = ellipse_frame(rng)
            cv2.imwrite(str(root / f"{s}_{i}.png"), img)
            cv2.imwrite(str(root / f"{s}_{i}_mask.png"), mask)
    return root


def train_tiny(model, x: np.ndarray, y: np.ndarray, epochs: int = TRAIN_EPOCHS):
    import tf_keras as keras

    from train.losses import BceDiceLoss

    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=BceDiceLoss())
    model.fit(x, y[..., None].astype(np.float32), batch_size=8, epochs=epochs, verbose=0)
    return model


def write_run(run: Path, model, data: Path, train_s: list, val_s: list) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    model.save(run / "model.keras")
    config = {"data": str(data), "layout": "kaggle", "nerve_class": 1,
              "input_hw": list(MODEL_HW), "scale": 1 / 255, "offset": 0.0,
              "val_fraction": VAL_FRACTION, "seed": 0, "model": {"base_filters": 4, "depth": 2}}
    (run / "config.json").write_text(json.dumps(config))
    split = {"train_subjects": sorted({s.subject for s in train_s}),
             "val_subjects": sorted({s.subject for s in val_s})}
    (run / "split.json").write_text(json.dumps(split))
    return run


@pytest.fixture(scope="session")
def pre():
    """The tiny model's pre-processing (defaults: pixel / 255)."""
    from edge.model.preprocess import PreprocessConfig

    return PreprocessConfig(input_hw=MODEL_HW)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data") / "kaggle")


@pytest.fixture(scope="session")
def tiny_split(tiny_data):
    from train.datasets import find_samples, split_by_subject

    return split_by_subject(find_samples(tiny_data), VAL_FRACTION, 0)


@pytest.fixture(scope="session")
def tiny_arrays(tiny_split):
    """((x_train, y_train), (x_val, y_val)) float inputs / uint8 masks at MODEL_HW."""
    from convert.data import load_frames
    from edge.model.preprocess import PreprocessConfig

    pre = PreprocessConfig(input_hw=MODEL_HW)
    return load_frames(tiny_split[0], pre), load_frames(tiny_split[1], pre)


def _trained(upsample: str, tiny_arrays):
    import tf_keras as keras

    from train.model import build_unet

    keras.utils.set_random_seed(0)
    model = build_unet(MODEL_HW, base_filters=4, depth=2, upsample=upsample)
    (x, y), _ = tiny_arrays
    return train_tiny(model, x, y)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_data, tiny_split, tiny_arrays) -> Path:
    """Run folder of a trained bilinear tiny U-Net."""
    model = _trained("bilinear", tiny_arrays)
    return write_run(tmp_path_factory.mktemp("runs") / "tiny", model, tiny_data, *tiny_split)


@pytest.fixture(scope="session")
def tiny_model(tiny_run):
    from train.modelio import load_keras

    return load_keras(tiny_run / "model.keras")


@pytest.fixture(scope="session")
def transpose_model():
    """Untrained transpose-conv U-Net (only its ops matter)."""
    from train.model import build_unet

    return build_unet(MODEL_HW, base_filters=4, depth=2, upsample="transpose")
