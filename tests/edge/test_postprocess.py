"""edge.model.postprocess on hand-made probability maps."""

from __future__ import annotations

import numpy as np
import pytest
from linear_exact import resize_linear_exact

from edge.model.postprocess import (
    PostprocessConfig,
    Postprocessor,
    binarize,
    split_outputs,
    to_frame,
)

HW = (16, 24)  # model output size for these tests


def prob_with_square(y0: int, x0: int, size: int, value: float = 0.9) -> np.ndarray:
    p = np.zeros(HW, np.float32)
    p[y0 : y0 + size, x0 : x0 + size] = value
    return p


def outputs(prob: np.ndarray, presence: float | None = None) -> list[np.ndarray]:
    outs = [prob[None, :, :, None]]
    if presence is not None:
        outs.insert(0, np.array([[presence]], np.float32))  # order must not matter
    return outs


def test_split_outputs_by_rank():
    prob = prob_with_square(2, 2, 4)
    p, presence = split_outputs(outputs(prob, presence=0.25))
    np.testing.assert_array_equal(p[..., 0], prob)
    assert presence == [pytest.approx(0.25)]
    assert split_outputs(outputs(prob))[1] == [None]
    with pytest.raises(ValueError, match="no \\(1, H, W, 1\\) mask"):
        split_outputs([np.zeros((1, 1), np.float32)])


def test_threshold_and_min_area_drop_small_components():
    prob = prob_with_square(1, 1, 5) + prob_with_square(10, 15, 2)  # 25 px and 4 px blobs
    mask = binarize(prob, PostprocessConfig(threshold=0.5, min_area=10))
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    assert mask[1:6, 1:6].all() and mask.sum() == 25
    assert binarize(prob, PostprocessConfig(min_area=0)).sum() == 29
    assert binarize(prob, PostprocessConfig(min_area=100)).sum() == 0
    assert binarize(prob, PostprocessConfig(threshold=0.95)).sum() == 0


def test_mask_back_to_frame_size_and_into_roi():
    mask01 = np.zeros(HW, np.uint8)
    mask01[:8, :12] = 1  # top-left quarter
    full = to_frame(mask01, (160, 240))
    assert full.shape == (160, 240) and set(np.unique(full)) == {0, 255}
    assert full[:78, :118].all() and not full[82:, :].any() and not full[:, 122:].any()
    roi = (100, 50, 48, 32)  # x, y, w, h inside a 240x160 frame
    placed = to_frame(mask01, (160, 240), roi)
    ys, xs = np.nonzero(placed)
    assert (ys.min(), xs.min()) == (50, 100)
    assert ys.max() < 50 + 17 and xs.max() < 100 + 25  # the quarter of the ROI, not the frame


@pytest.mark.parametrize("frame_hw", [(420, 580), (421, 579), (97, 133), (16, 24), (1, 5)])
def test_mask_to_frame_is_integer_bilinear_rethresholded_at_half(frame_hw):
    """INTER_LINEAR_EXACT of the 0/255 mask, then > 127: pinned to a plain-numpy reference of
    that integer arithmetic, so every machine draws the same outline pixels."""
    rng = np.random.default_rng(frame_hw[1])
    mask01 = (rng.random(HW) > 0.5).astype(np.uint8)
    want = np.where(resize_linear_exact(mask01 * np.uint8(255), frame_hw[::-1]) > 127, 255, 0)
    np.testing.assert_array_equal(to_frame(mask01, frame_hw), want)


def test_postprocessor_result_fields():
    post = Postprocessor(PostprocessConfig())
    res = post(outputs(prob_with_square(4, 6, 8)), (32, 48))
    assert res.detected and res.area_px == int((res.mask > 0).sum()) and res.presence is None
    assert res.mask.shape == (32, 48) and res.prob.shape == HW
    empty = post(outputs(np.zeros(HW, np.float32)), (32, 48))
    assert not empty.detected and empty.area_px == 0 and not empty.mask.any()


def test_presence_below_threshold_empties_the_mask():
    post = Postprocessor(PostprocessConfig(presence_threshold=0.5))
    prob = prob_with_square(4, 6, 8)
    assert not post(outputs(prob, presence=0.2), HW).detected
    res = post(outputs(prob, presence=0.8), HW)
    assert res.detected and res.presence == pytest.approx(0.8)


def test_smoothing_is_an_ema_and_reset_forgets():
    post = Postprocessor(PostprocessConfig(smooth=0.75, threshold=0.5))
    on = prob_with_square(4, 6, 8, value=1.0)
    off = np.zeros(HW, np.float32)
    assert post(outputs(on), HW).detected
    # One empty frame: 0.75 * 1.0 + 0.25 * 0 = 0.75 > 0.5, the nerve stays (no flicker).
    res = post(outputs(off), HW)
    assert res.detected and res.prob.max() == pytest.approx(0.75)
    assert post(outputs(off), HW).prob.max() == pytest.approx(0.5625)
    assert not post(outputs(off), HW).detected  # 0.42 < 0.5
    post.reset()
    assert post(outputs(on), HW).prob.max() == pytest.approx(1.0)
    unsmoothed = Postprocessor(PostprocessConfig(smooth=0.0))
    unsmoothed(outputs(on), HW)
    assert not unsmoothed(outputs(off), HW).detected


def test_bad_config_values():
    with pytest.raises(ValueError, match="smooth"):
        PostprocessConfig(smooth=1.0)
    with pytest.raises(ValueError, match="min_area"):
        PostprocessConfig(min_area=-1)
