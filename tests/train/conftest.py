"""Tiny synthetic datasets in both layouts (32x48 frames, 6 subjects). The real data
(``real_data``) comes from the one setting in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

FRAME_HW = (32, 48)  # synthetic frame (rows, cols)
N_SUBJECTS = 6
FRAMES_PER_SUBJECT = 4


def synthetic_frame(rng: np.random.Generator, empty: bool):
    """A noisy frame with a bright disc; the mask is the disc (or nothing)."""
    h, w = FRAME_HW
    img = rng.integers(20, 60, size=(h, w)).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    if not empty:
        cy, cx, r = int(rng.integers(8, h - 8)), int(rng.integers(8, w - 8)), 5
        cv2.circle(mask, (cx, cy), r, 1, -1)
        img[mask > 0] = 200
    return img, mask


def write_kaggle(root: Path, seed: int = 0) -> Path:
    """SUBJECT_IMAGE.png + SUBJECT_IMAGE_mask.png (0/255); each subject's first frame empty."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for s in range(1, N_SUBJECTS + 1):
        for i in range(1, FRAMES_PER_SUBJECT + 1):
            img, mask = synthetic_frame(rng, empty=i == 1)
            cv2.imwrite(str(root / f"{s}_{i}.png"), img)
            cv2.imwrite(str(root / f"{s}_{i}_mask.png"), mask * 255)
    return root


def write_folder(root: Path, seed: int = 1, nerve_class: int = 1) -> Path:
    """images/NNNN.png + masks/NNNN.png with class ids (nerve_class = nerve, 2 = vessel)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for k in range(N_SUBJECTS * FRAMES_PER_SUBJECT):
        img, mask = synthetic_frame(rng, empty=k % 5 == 0)
        ids = mask * nerve_class
        ids[:4, :6] = 2  # a "vessel" corner that must not count as nerve
        cv2.imwrite(str(root / "images" / f"{k:04d}.png"), cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
        cv2.imwrite(str(root / "masks" / f"{k:04d}.png"), ids.astype(np.uint8))
    return root


@pytest.fixture
def kaggle_dir(tmp_path) -> Path:
    return write_kaggle(tmp_path / "kaggle")


@pytest.fixture
def folder_dir(tmp_path) -> Path:
    return write_folder(tmp_path / "folder")


@pytest.fixture(scope="session")
def make_kaggle():
    """write_kaggle(root) for tests that build their own copy (e.g. to break it)."""
    return write_kaggle


@pytest.fixture(scope="session")
def make_folder():
    return write_folder
