"""NumPy metrics on hand-made masks, and the TF versions agree with them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.model import evaluate as metrics


def hand_made():
    """4 images of 4x4: a half overlap, empty vs empty, a miss on an empty truth, a perfect hit."""
    t = np.zeros((4, 4, 4), np.uint8)
    p = np.zeros((4, 4, 4), np.uint8)
    t[0, :2, :2] = 1  # truth 4 px
    p[0, :2, :1] = 1  # prediction 2 px inside it -> Dice 2*2/(4+2) = 2/3
    p[2, 3, 3] = 1  # a false positive on an empty truth -> Dice 0
    t[3, 1:3, 1:3] = 1
    p[3, 1:3, 1:3] = 1  # perfect -> 1
    return t, p


def test_dice_per_image_by_hand():
    t, p = hand_made()
    assert np.allclose(metrics.dice_per_image(t, p), [2 / 3, 1.0, 0.0, 1.0])


def test_summarize_by_hand():
    t, p = hand_made()
    m = metrics.summarize(t, p)
    tp, fp, fn = 2 + 4, 1, 2
    assert m["per_image_dice"] == pytest.approx((2 / 3 + 1 + 0 + 1) / 4)
    assert m["pooled_dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert m["iou"] == pytest.approx(tp / (tp + fp + fn))
    assert m["precision"] == pytest.approx(tp / (tp + fp))
    assert m["recall"] == pytest.approx(tp / (tp + fn))
    assert m["pixel_accuracy"] == pytest.approx((64 - fp - fn) / 64)
    assert m["detection_rate"] == 1.0
    assert m["presence_accuracy"] == pytest.approx(3 / 4)
    assert (m["n_images"], m["n_empty_truth"]) == (4, 2)


def test_all_empty_is_perfect_and_detection_undefined():
    z = np.zeros((3, 5, 5), np.uint8)
    m = metrics.summarize(z, z)
    assert m["per_image_dice"] == m["pooled_dice"] == m["iou"] == 1.0
    assert m["detection_rate"] is None


def test_tf_metrics_agree_with_numpy():
    from train import losses

    t, p = hand_made()
    rng = np.random.default_rng(3)
    t2 = (rng.random((5, 8, 8)) > 0.6).astype(np.uint8)
    p2 = (rng.random((5, 8, 8)) > 0.5).astype(np.uint8)
    for tt, pp in ((t, p), (t2, p2)):
        ref = metrics.summarize(tt, pp)
        got = {k: float(v) for k, v in losses.summarize(tt[..., None], pp[..., None]).items()}
        assert ref["dice_all"] == ref["per_image_dice"]  # the headline counts every frame
        for key, value in ref.items():
            if key in ("dice_all", "dice_present"):  # NumPy only: the TF one has the headline
                continue
            if value is None:
                assert math.isnan(got[key]), key
            else:
                assert got[key] == pytest.approx(value, abs=1e-6), key
        assert np.allclose(losses.dice_per_image(tt, pp).numpy(), metrics.dice_per_image(tt, pp))


def test_soft_dice_and_loss_on_perfect_and_wrong_predictions():
    from train import losses

    t, _ = hand_made()
    y = t[..., None].astype(np.float32)
    perfect = losses.soft_dice_per_image(y, y).numpy()
    assert np.allclose(perfect, 1.0)  # smooth keeps empty-vs-empty at 1
    wrong = losses.soft_dice_per_image(y, 1.0 - y).numpy()
    assert (wrong[[0, 3]] < 0.2).all()
    loss = losses.BceDiceLoss(1.0, 1.0)  # what training compiles
    loss_good = float(loss(y, np.clip(y, 0.01, 0.99)))
    loss_bad = float(loss(y, np.clip(1 - y, 0.01, 0.99)))
    assert loss_good < 0.1 < loss_bad
    assert float(losses.BceDiceLoss(1.0, 0.0)(y, np.full_like(y, 0.5))) == pytest.approx(
        math.log(2), rel=1e-4)
