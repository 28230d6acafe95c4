"""tf.data pipelines over arrays decoded once (train.datasets.load_arrays).

Train: in-memory uint8 arrays -> cache -> shuffle (reshuffled every pass) -> repeat ->
augment in parallel (stateless per-example seeds, so runs are reproducible) -> normalize the
way edge.model.preprocess does -> batch -> prefetch. Validation needs no pipeline: the val-Dice
callback scores the cached val arrays with edge.model.evaluate.score.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from edge.model.preprocess import PreprocessConfig
from train.augment import AugmentConfig, augment

PIXEL_MAX = 255.0  # augmentation works on pixel / 255 in [0, 1]
SHUFFLE_BUFFER_MAX = 10_000  # frames; 2,021 Kaggle frames fit whole


def _normalize_tf(pixels01, pre_cfg: PreprocessConfig):
    """Augmented pixel/255 in [0, 1] -> model input, same formula as edge.model.preprocess."""
    x = pixels01 * (PIXEL_MAX * pre_cfg.scale) + pre_cfg.offset
    if pre_cfg.channels != 1:
        x = tf.repeat(x, pre_cfg.channels, axis=-1)
    return x


def _targets(mask, presence_head: bool):
    if not presence_head:
        return mask
    present = tf.cast(tf.reduce_any(mask > 0), tf.float32)[None]
    return {"mask": mask, "presence": present}


def train_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch: int,
    aug_cfg: AugmentConfig,
    pre_cfg: PreprocessConfig,
    seed: int = 0,
    presence_head: bool = False,
) -> tf.data.Dataset:
    """Endless augmented batches of (input, target); use steps_per_epoch with model.fit.
    y: (N, H, W) nerve masks or (N, H, W, C) per-class masks."""
    if len(x) == 0:
        raise ValueError("no training frames")
    targets = y if y.ndim == 4 else y[..., None]  # (N, H, W, C) per-class masks as they are
    ds = tf.data.Dataset.from_tensor_slices((x[..., None], targets)).cache()
    ds = ds.shuffle(min(len(x), SHUFFLE_BUFFER_MAX), seed=seed, reshuffle_each_iteration=True)
    ds = ds.repeat()
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds))

    def prepare(pair, pair_seed):
        img = tf.cast(pair[0], tf.float32) / PIXEL_MAX
        mask = tf.cast(pair[1], tf.float32)
        img, mask = augment(img, mask, pair_seed, aug_cfg)
        return _normalize_tf(img, pre_cfg), _targets(mask, presence_head)

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch, drop_remainder=True)
    opts = tf.data.Options()
    # Arrays, not files: every worker sees all frames and keeps its share (multiworker).
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(opts).prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(n_frames: int, batch: int, max_steps: int | None = None) -> int:
    """One pass over the training frames (at least 1 step), capped by max_steps."""
    steps = max(1, n_frames // batch)
    return min(steps, max_steps) if max_steps else steps
