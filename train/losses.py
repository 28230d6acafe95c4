"""Losses and metrics in TensorFlow: a functional core (pure functions on tensors) and thin
tf_keras wrappers, as in segmentation_models. The hard metrics follow edge/model/evaluate.py exactly
(tests compare the two on hand-made masks).

Shapes: y_true, y_pred (N, H, W, 1) or (N, H, W); y_pred are probabilities in [0, 1].
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

DICE_SMOOTH = 1.0  # soft-Dice smoothing (pixels): keeps empty-vs-empty near 1 and gradients finite
EPS = 1e-7  # probability clipping for the log in BCE


def _per_image(y) -> tf.Tensor:
    y = tf.cast(y, tf.float32)
    return tf.reshape(y, (tf.shape(y)[0], -1))


# ---------------------------------------------------------------- soft (training) losses


def soft_dice_per_image(y_true, y_pred, smooth: float = DICE_SMOOTH) -> tf.Tensor:
    """(N,) soft Dice per image."""
    t, p = _per_image(y_true), _per_image(y_pred)
    inter = tf.reduce_sum(t * p, axis=1)
    den = tf.reduce_sum(t, axis=1) + tf.reduce_sum(p, axis=1)
    return (2.0 * inter + smooth) / (den + smooth)


def bce_per_image(y_true, y_pred) -> tf.Tensor:
    """(N,) mean binary cross-entropy per image."""
    t, p = _per_image(y_true), tf.clip_by_value(_per_image(y_pred), EPS, 1.0 - EPS)
    return -tf.reduce_mean(t * tf.math.log(p) + (1.0 - t) * tf.math.log(1.0 - p), axis=1)


def bce_dice_per_image(y_true, y_pred, bce_weight=1.0, dice_weight=1.0) -> tf.Tensor:
    """(N,) bce_weight * BCE + dice_weight * (1 - soft Dice), per image."""
    loss = tf.zeros(tf.shape(y_pred)[:1], tf.float32)
    if bce_weight:
        loss += bce_weight * bce_per_image(y_true, y_pred)
    if dice_weight:
        loss += dice_weight * (1.0 - soft_dice_per_image(y_true, y_pred))
    return loss


def channels_to_images(y) -> tf.Tensor:
    """(N, H, W, C) -> (N * C, H, W): each channel becomes an image of its own (n-major)."""
    y = tf.cast(y, tf.float32)
    return tf.reshape(tf.transpose(y, (0, 3, 1, 2)), (-1, tf.shape(y)[1], tf.shape(y)[2]))


def bce_dice_per_channel(y_true, y_pred, bce_weight=1.0, dice_weight=1.0) -> tf.Tensor:
    """(N, C): bce_dice_per_image of each channel on its own (CLASSES.md: per-channel BCE +
    soft Dice of independent sigmoid channels)."""
    n, c = tf.shape(y_pred)[0], tf.shape(y_pred)[-1]
    loss = bce_dice_per_image(channels_to_images(y_true), channels_to_images(y_pred),
                              bce_weight, dice_weight)
    return tf.reshape(loss, (n, c))


def multi_bce_dice_per_image(y_true, y_pred, bce_weight=1.0, dice_weight=1.0) -> tf.Tensor:
    """(N,): the per-channel losses averaged over channels; equals bce_dice_per_image for one
    channel."""
    return tf.reduce_mean(bce_dice_per_channel(y_true, y_pred, bce_weight, dice_weight), axis=1)


class BceDiceLoss(keras.losses.Loss):
    """Keras wrapper: returns per-image losses, so Keras (and tf.distribute) averages them."""

    def __init__(self, bce_weight=1.0, dice_weight=1.0, name="bce_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.bce_weight = float(bce_weight)
        self.dice_weight = float(dice_weight)

    def call(self, y_true, y_pred):
        return bce_dice_per_image(y_true, y_pred, self.bce_weight, self.dice_weight)

    def get_config(self):
        return {**super().get_config(), "bce_weight": self.bce_weight,
                "dice_weight": self.dice_weight}


class MultiBceDiceLoss(BceDiceLoss):
    """Per-channel BCE + soft Dice, averaged over the C channels (multi-class models)."""

    def __init__(self, bce_weight=1.0, dice_weight=1.0, name="multi_bce_dice", **kwargs):
        super().__init__(bce_weight, dice_weight, name=name, **kwargs)

    def call(self, y_true, y_pred):
        return multi_bce_dice_per_image(y_true, y_pred, self.bce_weight, self.dice_weight)


class DeepSupervisionLoss(BceDiceLoss):
    """U-Net++ heads side by side (N, H, W, K*C) against the C-channel target: the target is
    repeated per head and the per-channel losses averaged (every head trained alike)."""

    def __init__(self, bce_weight=1.0, dice_weight=1.0, name="deep_supervision", **kwargs):
        super().__init__(bce_weight, dice_weight, name=name, **kwargs)

    def call(self, y_true, y_pred):
        reps = tf.shape(y_pred)[-1] // tf.shape(y_true)[-1]
        y_true = tf.tile(y_true, tf.stack([1, 1, 1, reps]))
        return multi_bce_dice_per_image(y_true, y_pred, self.bce_weight, self.dice_weight)


class SoftDice(keras.metrics.MeanMetricWrapper):
    """Training-time soft Dice (mean over images), shown in the progress bar."""

    def __init__(self, name="soft_dice", **kwargs):
        super().__init__(soft_dice_per_image, name=name, **kwargs)


# ---------------------------------------------------------- hard metrics (= edge/model/evaluate.py)


def _hard(y) -> tf.Tensor:
    return tf.cast(_per_image(y) > 0, tf.float32)


def _ratio(num, den, empty):
    return tf.where(den > 0, num / tf.maximum(den, 1.0), tf.constant(empty, tf.float32))


def dice_per_image(y_true, y_pred) -> tf.Tensor:
    """(N,) hard Dice on binary masks; 1 where both are empty."""
    t, p = _hard(y_true), _hard(y_pred)
    inter = tf.reduce_sum(t * p, axis=1)
    den = tf.reduce_sum(t, axis=1) + tf.reduce_sum(p, axis=1)
    return _ratio(2.0 * inter, den, 1.0)


def summarize(y_true, y_pred) -> dict[str, tf.Tensor]:
    """Same keys and conventions as edge.model.evaluate.summarize, as tensors."""
    t, p = _hard(y_true), _hard(y_pred)
    tp = tf.reduce_sum(t * p)
    fp = tf.reduce_sum((1.0 - t) * p)
    fn = tf.reduce_sum(t * (1.0 - p))
    tn = tf.cast(tf.size(t), tf.float32) - tp - fp - fn
    has_t = tf.reduce_sum(t, axis=1) > 0
    has_p = tf.reduce_sum(p, axis=1) > 0
    overlap = tf.cast(tf.reduce_sum(t * p, axis=1) > 0, tf.float32)
    n_pos = tf.reduce_sum(tf.cast(has_t, tf.float32))
    n = tf.cast(tf.shape(t)[0], tf.float32)
    return {
        "per_image_dice": tf.reduce_mean(dice_per_image(t, p)),
        "pooled_dice": _ratio(2.0 * tp, 2.0 * tp + fp + fn, 1.0),
        "iou": _ratio(tp, tp + fp + fn, 1.0),
        "precision": _ratio(tp, tp + fp, 1.0),
        "recall": _ratio(tp, tp + fn, 1.0),
        "pixel_accuracy": _ratio(tp + tn, tp + tn + fp + fn, 1.0),
        "detection_rate": _ratio(tf.reduce_sum(overlap * tf.cast(has_t, tf.float32)), n_pos,
                                 float("nan")),
        "presence_accuracy": tf.reduce_mean(tf.cast(has_t == has_p, tf.float32)),
        "n_images": n,
        "n_empty_truth": n - n_pos,
        "false_positive_rate": _ratio(
            tf.reduce_sum(tf.cast(has_p & ~has_t, tf.float32)), n - n_pos, float("nan")),
    }
