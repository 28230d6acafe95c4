"""Training augmentation in TensorFlow ops (runs inside tf.data, in parallel).

Geometry (flips, rotation, zoom, shift) is ONE projective warp applied to image and mask with
the same matrix, so they stay aligned; the image is sampled bilinearly, the mask bilinearly
then thresholded at 0.5 (smoother edges than nearest). Photometric changes (gamma, contrast,
brightness, noise, speckle, blur) touch the image only. Randomness is stateless and comes from
a per-example seed, so a run is reproducible from --seed.

Images are float32 (H, W, 1) in [0, 1] (8-bit pixel / 255); masks float32 (H, W, 1) in {0, 1}.
Vertical flip is off by default: an ultrasound frame has a depth direction (skin at the top).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import tensorflow as tf

LEVELS = ("none", "flip", "light", "strong")  # "flip" = the student reference recipe
MASK_ON = 0.5  # a warped mask pixel is nerve when its bilinear value is at least this
BLUR_SIGMA_PX = 0.8  # gaussian blur (3x3 kernel) sigma, in input pixels
ELASTIC_GRID_PX = 16  # spacing of the random displacement grid for elastic warps


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; 0 / False turns a transform off.

    hflip / vflip: flip with probability 0.5.
    rotate_deg: uniform rotation in [-rotate_deg, +rotate_deg].
    zoom: (min, max) scale factor (>1 zooms in).
    shift: uniform shift in [-shift, +shift] of the image width/height (fraction).
    gamma: gamma drawn log-uniformly in [1/(1+gamma), 1+gamma].
    contrast: contrast factor in [1-contrast, 1+contrast] around the image mean.
    brightness: additive offset in [-brightness, +brightness] (fraction of full scale).
    noise_std: additive gaussian noise sigma (fraction of full scale).
    speckle_std: multiplicative noise sigma (ultrasound speckle is multiplicative).
    blur_prob: probability of a light gaussian blur.
    elastic_px: elastic displacement amplitude in pixels (0 = off).
    """

    hflip: bool = False
    vflip: bool = False
    rotate_deg: float = 0.0
    zoom: tuple[float, float] = (1.0, 1.0)
    shift: float = 0.0
    gamma: float = 0.0
    contrast: float = 0.0
    brightness: float = 0.0
    noise_std: float = 0.0
    speckle_std: float = 0.0
    blur_prob: float = 0.0
    elastic_px: float = 0.0

    @property
    def active(self) -> bool:
        return self != AugmentConfig()


_PRESETS = {
    "none": AugmentConfig(),
    "flip": AugmentConfig(hflip=True),
    "light": AugmentConfig(hflip=True, zoom=(0.9, 1.1), shift=0.08, gamma=0.2, contrast=0.15,
                           brightness=0.08, noise_std=0.02),
    "strong": AugmentConfig(hflip=True, rotate_deg=10.0, zoom=(0.85, 1.15), shift=0.1,
                            gamma=0.3, contrast=0.25, brightness=0.12, noise_std=0.02,
                            speckle_std=0.1, blur_prob=0.25),
}
ELASTIC_DEFAULT_PX = 4.0


def augment_config(level: str = "light", vflip: bool = False, elastic: bool = False):
    """The preset for --augment LEVEL, with the optional vertical flip and elastic warp."""
    if level not in _PRESETS:
        raise ValueError(f"--augment must be one of {', '.join(LEVELS)}, got {level!r}")
    cfg = _PRESETS[level]
    if vflip:
        cfg = replace(cfg, vflip=True)
    if elastic:
        cfg = replace(cfg, elastic_px=ELASTIC_DEFAULT_PX)
    return cfg


# ---------------------------------------------------------------- geometry


def _uniform(seed, lo, hi):
    return tf.random.stateless_uniform([], seed, lo, hi, tf.float32)


def _flip_sign(seed, enabled: bool):
    if not enabled:
        return tf.constant(1.0)
    return tf.where(_uniform(seed, 0.0, 1.0) < 0.5, -1.0, 1.0)


def affine_transform(seeds, cfg: AugmentConfig, hw) -> tf.Tensor:
    """The 8 projective parameters mapping OUTPUT pixels to INPUT pixels
    (ImageProjectiveTransformV3 convention) for flip -> rotate/zoom about the centre -> shift."""
    h, w = float(hw[0]), float(hw[1])
    fx = _flip_sign(seeds[0], cfg.hflip)
    fy = _flip_sign(seeds[1], cfg.vflip)
    theta = _uniform(seeds[2], -cfg.rotate_deg, cfg.rotate_deg) * (math.pi / 180.0)
    zoom = tf.exp(_uniform(seeds[3], math.log(cfg.zoom[0]), math.log(cfg.zoom[1])))
    tx = _uniform(seeds[4], -cfg.shift, cfg.shift) * w
    ty = _uniform(seeds[5], -cfg.shift, cfg.shift) * h
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    cos, sin = tf.cos(theta) / zoom, tf.sin(theta) / zoom
    # input = M @ (output - centre - shift) + centre, with M = flip @ rotate(-theta) / zoom
    m00, m01, m10, m11 = fx * cos, fx * sin, -fy * sin, fy * cos
    ox, oy = cx + tx, cy + ty
    b0 = cx - (m00 * ox + m01 * oy)
    b1 = cy - (m10 * ox + m11 * oy)
    return tf.stack([m00, m01, b0, m10, m11, b1, 0.0, 0.0])


def warp(image, transform, interpolation="BILINEAR") -> tf.Tensor:
    """Warp one (H, W, C) image with 8 projective params; outside pixels become 0."""
    hw = tf.shape(image)[:2]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform[None], output_shape=hw,
        fill_value=0.0, interpolation=interpolation, fill_mode="CONSTANT")
    return out[0]


def _remap_bilinear(image, map_y, map_x) -> tf.Tensor:
    """Sample (H, W, C) image at float coordinates (H, W) each; outside = edge pixels."""
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    y0f, x0f = tf.floor(map_y), tf.floor(map_x)
    wy, wx = (map_y - y0f)[..., None], (map_x - x0f)[..., None]

    def at(yy, xx):
        yy = tf.clip_by_value(tf.cast(yy, tf.int32), 0, h - 1)
        xx = tf.clip_by_value(tf.cast(xx, tf.int32), 0, w - 1)
        return tf.gather_nd(image, tf.stack([yy, xx], axis=-1))

    top = at(y0f, x0f) * (1 - wx) + at(y0f, x0f + 1) * wx
    bottom = at(y0f + 1, x0f) * (1 - wx) + at(y0f + 1, x0f + 1) * wx
    return top * (1 - wy) + bottom * wy


def elastic_maps(seed, hw, amplitude_px: float):
    """Smooth random displacement (map_y, map_x): normal noise on a coarse grid, upsampled."""
    h, w = int(hw[0]), int(hw[1])
    gh, gw = max(2, h // ELASTIC_GRID_PX + 1), max(2, w // ELASTIC_GRID_PX + 1)
    coarse = tf.random.stateless_normal([1, gh, gw, 2], seed) * amplitude_px
    field = tf.image.resize(coarse, (h, w), method="bicubic")[0]
    yy, xx = tf.meshgrid(tf.range(h, dtype=tf.float32), tf.range(w, dtype=tf.float32),
                         indexing="ij")
    return yy + field[..., 0], xx + field[..., 1]


def augment_geometry(image, mask, seeds, cfg: AugmentConfig):
    hw = image.shape[:2]
    needs_affine = (cfg.hflip or cfg.vflip or cfg.rotate_deg or cfg.shift
                    or cfg.zoom != (1.0, 1.0))
    if needs_affine:
        t = affine_transform(seeds, cfg, hw)
        image, mask = warp(image, t), warp(mask, t)
    if cfg.elastic_px:
        my, mx = elastic_maps(seeds[6], hw, cfg.elastic_px)
        image, mask = _remap_bilinear(image, my, mx), _remap_bilinear(mask, my, mx)
    return image, tf.cast(mask >= MASK_ON, tf.float32)


# ---------------------------------------------------------------- intensity


def _gaussian_kernel3(sigma: float) -> tf.Tensor:
    g = [math.exp(-(d * d) / (2 * sigma * sigma)) for d in (-1, 0, 1)]
    k = tf.constant([[a * b for b in g] for a in g], tf.float32)
    return tf.reshape(k / tf.reduce_sum(k), (3, 3, 1, 1))


def augment_intensity(image, seeds, cfg: AugmentConfig) -> tf.Tensor:
    x = image
    if cfg.gamma:
        lg = math.log(1.0 + cfg.gamma)
        x = tf.pow(tf.maximum(x, 0.0), tf.exp(_uniform(seeds[0], -lg, lg)))
    if cfg.contrast:
        factor = _uniform(seeds[1], 1.0 - cfg.contrast, 1.0 + cfg.contrast)
        mean = tf.reduce_mean(x)
        x = mean + (x - mean) * factor
    if cfg.brightness:
        x = x + _uniform(seeds[2], -cfg.brightness, cfg.brightness)
    if cfg.speckle_std:
        x = x * (1.0 + tf.random.stateless_normal(tf.shape(x), seeds[3]) * cfg.speckle_std)
    if cfg.noise_std:
        x = x + tf.random.stateless_normal(tf.shape(x), seeds[4]) * cfg.noise_std
    if cfg.blur_prob:
        blurred = tf.nn.conv2d(x[None], _gaussian_kernel3(BLUR_SIGMA_PX), 1, "SAME")[0]
        x = tf.where(_uniform(seeds[5], 0.0, 1.0) < cfg.blur_prob, blurred, x)
    return tf.clip_by_value(x, 0.0, 1.0)


def augment(image, mask, seed, cfg: AugmentConfig):
    """(image, mask) -> augmented (image, mask). image (H, W, 1) float in [0, 1], mask (H, W, 1)
    0/1; seed: int tensor of shape [2]. Shapes must be static (they are, from cached arrays)."""
    if not cfg.active:
        return image, mask
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=13)
    image, mask = augment_geometry(image, mask, [seeds[i] for i in range(7)], cfg)
    image = augment_intensity(image, [seeds[i] for i in range(7, 13)], cfg)
    return image, mask
