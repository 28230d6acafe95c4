"""edge.model.preprocess on hand-made arrays: gray/BGR/16-bit inputs, ROI crop, normalization,
and the resizes' exact integer arithmetic (the same bits on x86, arm64 and in the browser)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from linear_exact import box2, resize_linear_exact

from edge.errors import RoiError
from edge.model.preprocess import (
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


@pytest.mark.parametrize("frame_hw", [(420, 580), (421, 579), (97, 133), (40, 50), (1, 7)])
def test_resize_is_integer_bilinear_then_exact_box_average(frame_hw):
    """resize_gray = INTER_LINEAR_EXACT to twice the input, then (a + b + c + d + 2) >> 2: the
    arithmetic is pinned to a plain-numpy reference, not only to this machine's OpenCV."""
    rng = np.random.default_rng(sum(frame_hw))
    gray = rng.integers(0, 256, frame_hw, dtype=np.uint8)
    cfg = PreprocessConfig(input_hw=(128, 176))
    want = box2(resize_linear_exact(gray, (2 * 176, 2 * 128)))
    np.testing.assert_array_equal(frame_to_gray_input(gray, cfg), want)
    double = cv2.resize(gray, (2 * 176, 2 * 128), interpolation=cv2.INTER_LINEAR_EXACT)
    np.testing.assert_array_equal(double, resize_linear_exact(gray, (2 * 176, 2 * 128)))


@pytest.mark.parametrize("src_hw, dst_hw", [((105, 145), (32, 44)), ((37, 23), (8, 9)),
                                            ((5, 3), (9, 7)), ((1, 1), (2, 3)), ((6, 8), (3, 4))])
def test_mask_to_input_counts_area_exactly(src_hw, dst_hw):
    """A label pixel is nerve when at least half of its area was nerve, counted in integers:
    checked against a brute force (each source pixel split into dst-size sub-pixels)."""
    rng = np.random.default_rng(src_hw[0])
    mask = (rng.random(src_hw) > 0.6).astype(np.uint8) * 255
    got = mask_to_input(mask, PreprocessConfig(input_hw=dst_hw))
    (sh, sw), (h, w) = src_hw, dst_hw
    fine = np.repeat(np.repeat(mask > 0, h, axis=0), w, axis=1)  # (sh*h, sw*w)
    covered = fine.reshape(h, sh, w, sw).sum(axis=(1, 3))
    np.testing.assert_array_equal(got, (2 * covered >= sh * sw).astype(np.uint8))


def test_mask_exactly_half_covered_is_nerve():
    mask = np.zeros((4, 4), np.uint8)
    mask[:, :1] = 1  # each 2x2 output pixel of the left column: exactly half nerve
    mask[:1, 2:] = 1  # the right column's top pixel: exactly half nerve
    np.testing.assert_array_equal(mask_to_input(mask, PreprocessConfig(input_hw=(2, 2))),
                                  [[1, 1], [1, 0]])
