"""On the real Kaggle frames (skipped without them; see NERVE_EDGE_DATA in tests/conftest.py):
the subject split and int8 calibration through edge.model.preprocess, with a small untrained model
at the default input."""

from __future__ import annotations

import numpy as np

from convert import quantize
from convert.data import calibration_frames, open_source
from edge.model.preprocess import DEFAULT_INPUT_HW

CALIB = 8  # real frames: enough to check the calibration path, cheap to convert


def test_real_frames_split_by_subject_and_calibrate_int8(kaggle_train, tmp_path):
    from train.model import build_unet

    model_path = tmp_path / "m.keras"
    build_unet(DEFAULT_INPUT_HW, base_filters=4, depth=2).save(model_path)
    backend, src = open_source(model_path, kaggle_train, 0.2, 0)
    train_subj = {s.subject for s in src.train}
    assert train_subj and not train_subj & {s.subject for s in src.val}
    calib = calibration_frames(src.train, src.pre, CALIB, seed=0)
    assert calib.shape == (CALIB, *DEFAULT_INPUT_HW, 1) and calib.dtype == np.float32
    assert 0.0 <= calib.min() and calib.max() <= 1.0
    again = calibration_frames(src.train, src.pre, CALIB, seed=0)
    np.testing.assert_array_equal(calib, again)  # seeded: the same frames every run
    q = quantize.check_input_quant(quantize.to_int8(backend.model, calib, src.pre), src.pre)
    assert q["ok"] and q["zero_point"] == -128
