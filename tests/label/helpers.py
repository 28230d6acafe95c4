"""Shared by tests/label: frames with known masks, Dice, and the edge-train runner."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tests.cli_contract import run_tool


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def synthetic(folder: Path, n: int = 4, empty: int = 2, hw=(120, 160)) -> dict[str, np.ndarray]:
    """n frames with one ellipse each (class 1), `empty` with none: {file name: truth}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    truth = {}
    for i in range(n + empty):
        image = rng.integers(10 + 8 * i, 50 + 8 * i, hw, dtype=np.uint8)  # no two alike
        mask = np.zeros(hw, np.uint8)
        if i < n:
            cv2.ellipse(mask, (40 + 15 * i, 50 + 5 * i), (18 + 3 * i, 11), 10 * i, 0, 360, 1, -1)
            image[mask > 0] += 120
        name = f"frame_{i:02d}.png"
        cv2.imwrite(str(folder / name), image)
        truth[name] = mask
    return truth


def edge_train(*args: str):
    return run_tool("train.cli", list(args))


def read_ids(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
