"""Augmentation keeps image and mask aligned; levels behave as documented."""

from __future__ import annotations

import numpy as np
import pytest

from train.augment import AugmentConfig, augment, augment_config

HW = (48, 64)


def square_pair():
    """A bright square on a dark frame; the mask is the same square."""
    img = np.full(HW + (1,), 0.1, np.float32)
    mask = np.zeros(HW + (1,), np.float32)
    img[8:22, 6:26] = 0.9  # off-centre, so a flip or shift of one but not the other shows
    mask[8:22, 6:26] = 1.0
    return img, mask


@pytest.mark.parametrize("level", ["light", "strong"])
def test_mask_still_covers_the_bright_pixels(level):
    import tensorflow as tf

    img, mask = square_pair()
    # geometry only: intensity changes would blur the "bright" test, not the alignment
    geo = augment_config(level, vflip=True, elastic=True)
    geo = AugmentConfig(hflip=geo.hflip, vflip=True, rotate_deg=10.0, zoom=geo.zoom,
                        shift=geo.shift, elastic_px=geo.elastic_px)
    for k in range(8):
        a_img, a_mask = augment(tf.constant(img), tf.constant(mask), tf.constant([k, 7]), geo)
        a_img, a_mask = a_img.numpy()[..., 0], a_mask.numpy()[..., 0]
        assert set(np.unique(a_mask)) <= {0.0, 1.0}
        bright = a_img > 0.5
        inter = (bright & (a_mask > 0)).sum()
        dice = 2 * inter / (bright.sum() + a_mask.sum())
        assert dice > 0.9, f"seed {k}: image and mask drifted apart (Dice {dice:.2f})"


def test_full_level_changes_the_image_but_keeps_range_and_shape():
    import tensorflow as tf

    img, mask = square_pair()
    a_img, a_mask = augment(tf.constant(img), tf.constant(mask), tf.constant([1, 2]),
                            augment_config("strong"))
    assert a_img.shape == img.shape and a_mask.shape == mask.shape
    assert not np.allclose(a_img.numpy(), img)
    assert 0.0 <= float(tf.reduce_min(a_img)) and float(tf.reduce_max(a_img)) <= 1.0


def test_none_is_identity_and_vflip_is_off_by_default():
    import tensorflow as tf

    img, mask = square_pair()
    a_img, a_mask = augment(tf.constant(img), tf.constant(mask), tf.constant([0, 0]),
                            augment_config("none"))
    assert np.array_equal(a_img.numpy(), img) and np.array_equal(a_mask.numpy(), mask)
    assert not augment_config("light").vflip and augment_config("light", vflip=True).vflip
    with pytest.raises(ValueError, match="--augment"):
        augment_config("extreme")


def test_same_seed_same_result():
    import tensorflow as tf

    img, mask = square_pair()
    cfg = augment_config("strong")
    a = augment(tf.constant(img), tf.constant(mask), tf.constant([5, 6]), cfg)[0].numpy()
    b = augment(tf.constant(img), tf.constant(mask), tf.constant([5, 6]), cfg)[0].numpy()
    assert np.array_equal(a, b)
