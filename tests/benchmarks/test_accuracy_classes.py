"""edge-bench accuracy per class (CLASSES.md): a model whose sidecar lists classes is scored
per class, with per-frame detection counts (NumPy + OpenCV only)."""

from __future__ import annotations

import json

import cv2
import numpy as np

from benchmarks.accuracy import FrameCache, class_figures
from edge.postprocess import PostprocessConfig
from edge.preprocess import PreprocessConfig
from train.classes import parse_classes
from train.config import classes_of
from train.datasets import find_samples
from train.modelio import ModelSettings

CLASSES = parse_classes("1,2", "nerve,vessel")


def write_folder(root, n=4):
    """n frames: a nerve square in each, a vessel square in the even ones."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        ids = np.zeros((16, 16), np.uint8)
        ids[:6, :6] = 1
        if i % 2 == 0:
            ids[10:, 10:] = 2
        cv2.imwrite(str(root / "images" / f"{i}.png"), np.full((16, 16), 80, np.uint8))
        cv2.imwrite(str(root / "masks" / f"{i}.png"), ids)
    return root


class VesselEverywhere:
    """Channel 0 (nerve) empty, channel 1 (vessel) certain everywhere."""

    def run(self, x):
        out = np.zeros((1, 16, 16, 2), np.float32)
        out[..., 1] = 1.0
        return [out]


def test_class_figures_count_frames_per_class(tmp_path):
    samples = find_samples(write_folder(tmp_path / "d"), "folder")
    pre = PreprocessConfig(input_hw=(16, 16))
    settings = ModelSettings(pre=pre, post=PostprocessConfig(), origin="test")
    row = class_figures(VesselEverywhere(), FrameCache(samples, 1), settings, CLASSES)
    nerve, vessel = row["classes"]["nerve"], row["classes"]["vessel"]
    assert (nerve["tp"], nerve["fn"]) == (0, 4) and nerve["detection_rate"] == 0.0
    assert (vessel["tp"], vessel["fp"], vessel["tn"]) == (2, 2, 0)
    assert vessel["false_positive_rate"] == 1.0
    assert row["per_image_dice"] == (0.0 + vessel["per_image_dice"]) / 2


def test_classes_of_reads_the_sidecar(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    assert classes_of(model) is None  # no sidecar: nerve-only
    (tmp_path / "m.json").write_text(json.dumps({"name": "m", "classes": list(CLASSES)}))
    assert classes_of(model) == CLASSES
