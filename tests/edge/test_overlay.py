"""edge.view.overlay draws inside the mask (and the text corner) and nowhere else."""

from __future__ import annotations

import numpy as np

from edge.view.overlay import FILL_BGR, draw_overlay

H, W = 120, 160


def frame_and_mask():
    frame = np.full((H, W, 3), 100, np.uint8)
    mask = np.zeros((H, W), np.uint8)
    mask[60:100, 90:140] = 255
    return frame, mask


def test_fill_and_contour_stay_on_the_nerve():
    frame, mask = frame_and_mask()
    out = draw_overlay(frame, mask, alpha=0.5)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.array_equal(frame, np.full((H, W, 3), 100, np.uint8))  # input left untouched
    changed = (out != frame).any(axis=2)
    inside = mask > 0
    assert changed[inside].mean() > 0.99
    # The anti-aliased contour may spill two pixels; nothing further away changes.
    near = np.zeros_like(inside)
    near[57:103, 87:143] = True
    assert not changed[~near].any()
    expected = (0.5 * 100 + 0.5 * np.array(FILL_BGR)).round()
    np.testing.assert_allclose(out[80, 115], expected, atol=1)  # centre: the blended fill


def test_empty_mask_and_alpha_zero_leave_the_image():
    frame, mask = frame_and_mask()
    assert np.array_equal(draw_overlay(frame, np.zeros_like(mask)), frame)
    out = draw_overlay(frame, mask, alpha=0.0)
    assert np.array_equal(out[75:85, 100:130], frame[75:85, 100:130])  # no fill, contour only


def test_stats_text_gets_a_dark_backdrop_top_left():
    frame, mask = frame_and_mask()
    out = draw_overlay(frame, np.zeros_like(mask), stats_lines=["30.0 FPS", "nerve: no"])
    corner = out[:30, :60]
    assert (corner < 100).any() and (corner > 200).any()  # darkened backdrop + white text
    assert np.array_equal(out[60:, 80:], frame[60:, 80:])
