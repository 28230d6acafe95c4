"""A plain-numpy reference of OpenCV's INTER_LINEAR_EXACT on uint8 (its resize_bitExact), written
from the algorithm, not from cv2: the tests pin edge's resizes to this arithmetic, so a platform
whose OpenCV computes other bits fails here instead of drawing other masks.

Weights: 8 fractional bits. Source position f = (d + 0.5) * (1 / (dst / src)) - 0.5 (doubles),
w1 = round-half-even((f - floor f) * 256), w0 = 256 - w1; a destination outside the first/last
source pixel takes that pixel alone. Horizontal a * w0 + b * w1, then vertical
(h0 * v0 + h1 * v1 + 32768) >> 16.
"""

from __future__ import annotations

import numpy as np

ONE = 256


def taps(n_in: int, n_out: int):
    """(first index, second index, w0, w1) per output pixel along one axis."""
    f = (np.arange(n_out) + 0.5) * (1.0 / (n_out / n_in)) - 0.5
    i = np.floor(f).astype(np.int64)
    inside = (i >= 0) & (i < n_in - 1)
    w1 = np.where(inside, np.round((f - i) * ONE), 0).astype(np.int64)  # np.round: half to even
    first = np.where(inside, i, np.where(i < 0, 0, n_in - 1))
    second = np.where(inside, i + 1, first)
    return first, second, ONE - w1, w1


def resize_linear_exact(src: np.ndarray, wh: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W) -> uint8 (h, w), wh = (w, h) as cv2.resize takes it."""
    w, h = wh
    xa, xb, x0, x1 = taps(src.shape[1], w)
    ya, yb, y0, y1 = taps(src.shape[0], h)
    s = src.astype(np.int64)
    rows = s[:, xa] * x0 + s[:, xb] * x1
    return ((rows[ya] * y0[:, None] + rows[yb] * y1[:, None] + 32768) >> 16).astype(np.uint8)


def box2(img: np.ndarray) -> np.ndarray:
    """Exact 2x box average, rounded half up: (a + b + c + d + 2) >> 2."""
    s = img.astype(np.int64)
    return ((s[0::2, 0::2] + s[0::2, 1::2] + s[1::2, 0::2] + s[1::2, 1::2] + 2) >> 2).astype(
        np.uint8)
