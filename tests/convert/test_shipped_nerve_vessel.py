"""The shipped nerve + vessel model (issue 16) loads through edge's backends, gives one
channel per class, and its sidecar carries the CLASSES.md list and the model's sha256.
No fixtures, no data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.model.backends import open_backend
from edge.model.metadata import check_sha256, load_meta, read_sidecar, sidecar_path
from edge.model.preprocess import PreprocessConfig, normalize

MODELS = Path(__file__).resolve().parents[2] / "edge" / "models"
SHIPPED = ("nerve_vessel_int8.tflite", "nerve_vessel.onnx")
CLASSES = [{"id": 1, "name": "nerve", "color": "#ffc800", "safety": False},
           {"id": 2, "name": "vessel", "color": "#ff3030", "safety": True}]
MAX_GMAC = 0.25  # the compute budget per frame


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_nerve_vessel_model_loads_and_its_sidecar_validates(name):
    if name.endswith(".onnx"):
        pytest.importorskip("onnxruntime", reason="the [onnx] extra runs .onnx models")
    path = MODELS / name
    meta = load_meta(path)  # validated like every sidecar
    assert check_sha256(path, meta)[1] == "ok"
    assert read_sidecar(sidecar_path(path))["classes"] == CLASSES
    backend = open_backend(path)
    h, w = meta.input_hw
    gray = np.full((h, w), 100, np.uint8)
    outs = [np.asarray(o) for o in backend.run(normalize(gray, PreprocessConfig(input_hw=(h, w))))]
    mask = next(o for o in outs if o.ndim == 4)
    assert mask.shape == (1, h, w, len(CLASSES))
    assert 0.0 <= float(mask.min()) and float(mask.max()) <= 1.0


def test_shipped_nerve_vessel_model_fits_the_compute_budget():
    from benchmarks.macs import tflite_macs, tflite_precision

    path = MODELS / "nerve_vessel_int8.tflite"
    assert 0 < tflite_macs(path) <= MAX_GMAC * 1e9
    assert tflite_precision(path) == "int8"
