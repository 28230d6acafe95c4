"""Frame -> model input. THE one implementation: training, int8 calibration, validation,
benchmarks and the device all call these functions, so they can never disagree.

Geometry: grayscale -> optional ROI crop (x, y, w, h in frame pixels) -> resize to the model
input (H, W) (``resize_gray``: bilinear to twice the input, then an exact 2x box average).
Values: ``x = pixel_8bit * scale + offset`` with scale/offset from the model's metadata
(default 1/255 and 0: inputs in [0, 1]).

Every resize here is integer arithmetic (cv2.INTER_LINEAR_EXACT, the 2x box average, and the
label masks' exact area coverage), so x86, arm64 and the browser (edge/view/web/app/imgproc.js)
compute the same bits. OpenCV's plain INTER_LINEAR is not used: its uint8 SIMD kernels round
differently per instruction set.

Masks follow the same crop (``mask_to_input``): a label pixel is nerve when at least half of
its area at the model input size was nerve, counted exactly.

Quantization to int8/uint8 is NOT done here: the backend does it with the model's own
scale/zero-point.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.errors import RoiError

DEFAULT_INPUT_HW = (128, 176)  # H, W: keeps the 420x580 Kaggle frame aspect (0.724 vs 0.727)
DEFAULT_SCALE = 1.0 / 255.0  # model input = pixel * scale + offset
DEFAULT_OFFSET = 0.0
MASK_ON = 0.5  # a resized mask pixel is nerve when at least half of its area was nerve


@dataclass(frozen=True)
class PreprocessConfig:
    """How a frame becomes a model input.

    input_hw: model input (height, width) in pixels.
    roi: optional (x, y, w, h) crop in frame pixels, applied before resizing; scanner
         screens carry UI borders around the image.
    scale, offset: normalization, x = pixel * scale + offset (8-bit pixel units).
    channels: model input channels; gray is repeated for 3-channel models.
    """

    input_hw: tuple[int, int] = DEFAULT_INPUT_HW
    roi: tuple[int, int, int, int] | None = None
    scale: float = DEFAULT_SCALE
    offset: float = DEFAULT_OFFSET
    channels: int = 1


def to_gray8(image: np.ndarray) -> np.ndarray:
    """Any frame (gray/BGR/BGRA; uint8, uint16 or float in [0,1]) -> HxW uint8."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        img = cv2.cvtColor(img, code)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D gray or 3-D color frame, got shape {img.shape}")
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        # 16-bit frames (some grabbers, TIFF exports): keep the full range, >> 8.
        return (img >> 8).astype(np.uint8)
    if np.issubdtype(img.dtype, np.floating):
        return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.clip(img, 0, 255).astype(np.uint8)


def check_roi(roi: tuple[int, int, int, int] | None, frame_hw: tuple[int, int]) -> None:
    """Raise RoiError naming the frame size when the ROI does not fit inside it."""
    if roi is None:
        return
    x, y, w, h = roi
    fh, fw = frame_hw
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > fw or y + h > fh:
        raise RoiError(
            f"--roi {x},{y},{w},{h} does not fit inside the {fw}x{fh} frame; "
            f"use x,y,w,h with x+w <= {fw} and y+h <= {fh}"
        )


def crop(image: np.ndarray, roi: tuple[int, int, int, int] | None) -> np.ndarray:
    if roi is None:
        return image
    check_roi(roi, image.shape[:2])
    x, y, w, h = roi
    return image[y : y + h, x : x + w]


def resize_gray(gray: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """Resize to the model input with area-like averaging at any scale factor, bit-exact on
    every machine.

    cv2.INTER_AREA is a true box filter but takes its slow float path at non-integer factors
    (measured 1-4 ms for 580x420 -> 176x128 on a loaded 2-core VM, most of a frame's budget),
    while an exact 2x area reduction is fast. So: bilinear to twice the target size with
    cv2.INTER_LINEAR_EXACT (8-bit fixed-point weights, the same bits on every instruction set,
    unlike INTER_LINEAR), then an exact 2x box average, (a + b + c + d + 2) >> 2 (INTER_AREA's
    integer path at exactly 2x). Speckle is still averaged (no aliasing), and every caller
    (training, calibration, validation, device, the browser's imgproc.js) gets the same bits.
    """
    h, w = input_hw
    if gray.shape[:2] == (h, w):
        return gray
    double = cv2.resize(gray, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR_EXACT)
    return cv2.resize(double, (w, h), interpolation=cv2.INTER_AREA)


def frame_to_gray_input(image: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Geometry only: frame -> HxW uint8 at the model input size (used to cache training data)."""
    return resize_gray(crop(to_gray8(image), cfg.roi), cfg.input_hw)


def normalize(gray_input: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """HxW uint8 (already at input size) -> (1, H, W, C) float32 model input."""
    x = gray_input.astype(np.float32) * np.float32(cfg.scale) + np.float32(cfg.offset)
    x = x[None, :, :, None]
    if cfg.channels != 1:
        x = np.repeat(x, cfg.channels, axis=3)
    return x


def preprocess(image: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Frame -> (1, H, W, C) float32 model input."""
    return normalize(frame_to_gray_input(image, cfg), cfg)


def _cover_axis(a: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    """Integer sums of ``a`` (int64) over n_out equal spans of ``axis``, partial pixels weighed
    exactly: on a grid where an input pixel is n_out units wide, output pixel d spans
    [d*n_in, (d+1)*n_in). The running integral at a boundary t = q*n_out + r (in units) is
    n_out * (sum of the first q pixels) + r * pixel q; each output is the difference of two."""
    n_in = a.shape[axis]
    q, r = np.divmod(np.arange(n_out + 1) * n_in, n_out)
    csum = np.cumsum(a, axis=axis)
    csum = np.concatenate([np.zeros_like(np.take(csum, [0], axis=axis)), csum], axis=axis)
    shape = [1, 1]
    shape[axis] = -1
    at = np.take(csum, q, axis=axis) * n_out + r.reshape(shape) * np.take(
        a, np.minimum(q, n_in - 1), axis=axis)  # r == 0 where q == n_in
    return np.diff(at, axis=axis)


def area_at_least_half(mask01: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """0/1 mask -> 0/1 mask of size hw: 1 where at least MASK_ON (half) of the output pixel's
    area was 1.

    Exact (INTER_AREA's coverage without its float rounding): the covered area is counted in
    integers, one axis at a time (``_cover_axis``), in units where an output pixel's area is
    sh * sw. No rounding anywhere, so the same labels on every machine.
    """
    h, w = hw
    sh, sw = mask01.shape
    covered = _cover_axis(_cover_axis(mask01.astype(np.int64), w, 1), h, 0)
    return (2 * covered >= sh * sw).astype(np.uint8)  # covered / (sh * sw) >= MASK_ON


def mask_to_input(mask: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Label mask (any nonzero = nerve, or a bool array) -> HxW uint8 0/1 at the model input
    size, through the same crop as the image: a pixel is nerve when at least MASK_ON (half)
    of its area was nerve (``area_at_least_half``, exact)."""
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[:, :, 0]
    m = crop((m > 0).astype(np.uint8), cfg.roi)
    if m.shape == tuple(cfg.input_hw):
        return m
    return area_at_least_half(m, cfg.input_hw)
