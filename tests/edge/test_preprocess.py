"""edge.preprocess on hand-made arrays: gray/BGR/16-bit inputs, ROI crop, normalization."""

from __future__ import annotations

import numpy as np
import pytest

from edge.errors import RoiError
from edge.preprocess import (
    PreprocessConfig,
    check_roi,
    frame_to_gray_input,
    mask_to_input,
    preprocess,
    to_gray8,
)


def test_16bit_keeps_the_top_byte():
    img = np.array([[0, 255, 256, 65535]], np.uint16)
    np.testing.assert_array_equal(to_gray8(img), [[0, 0, 1, 255]])


def test_bgr_and_gray_give_the_same_input():
    gray = np.tile(np.arange(0, 240, 3, dtype=np.uint8), (60, 1))  # 60x80 ramp
    bgr = np.repeat(gray[:, :, None], 3, axis=2)
    cfg = PreprocessConfig(input_hw=(30, 40))
    np.testing.assert_array_equal(preprocess(gray, cfg), preprocess(bgr, cfg))


def test_normalization_shape_and_channels():
    gray = np.full((20, 20), 255, np.uint8)
    x = preprocess(gray, PreprocessConfig(input_hw=(10, 10), channels=3))
    assert x.shape == (1, 10, 10, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x, 1.0)
    y = preprocess(gray, PreprocessConfig(input_hw=(10, 10), scale=2 / 255, offset=-1.0))
    np.testing.assert_allclose(y, 1.0, rtol=1e-6)


def test_roi_crops_before_resizing():
    img = np.zeros((100, 200), np.uint8)
    img[20:60, 50:130] = 200  # the "scanner image" inside UI borders
    cfg = PreprocessConfig(input_hw=(8, 16), roi=(50, 20, 80, 40))
    assert (frame_to_gray_input(img, cfg) == 200).all()
    mask = np.zeros((100, 200), np.uint8)
    mask[20:40, 50:90] = 255  # top-left quarter of the ROI
    m = mask_to_input(mask, cfg)
    assert m[:4, :8].all() and not m[4:, :].any() and not m[:, 8:].any()


@pytest.mark.parametrize("roi", [(0, 0, 201, 10), (-1, 0, 10, 10), (190, 90, 20, 20),
                                 (0, 0, 0, 5)])
def test_roi_outside_frame_is_refused(roi):
    with pytest.raises(RoiError, match="200x100 frame"):
        check_roi(roi, (100, 200))
