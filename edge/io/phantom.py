"""The built-in synthetic ultrasound phantom: a frame source that needs no camera and no data.

Speckle, layered tissue with depth attenuation, a slowly moving hypoechoic oval with a bright
rim (the nerve) and a pulsating dark vessel beside it. Deterministic: the same seed and index
give the same frame, and ``truth(index)`` is the exact nerve mask, so the fixture model, the
tests and the benchmarks can all score against it.

    source = PhantomSource(580, 420, seed=0)     # or open_source(SourceConfig(kind="phantom"))
    frame, mask = phantom_pair(42)               # one (frame, truth) pair, cached generator
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from edge.errors import SourceError
from edge.types import Frame, SourceInfo, new_frame

PHANTOM_WIDTH = 580  # px, the Kaggle frame size
PHANTOM_HEIGHT = 420
PHANTOM_LABEL = "the phantom"
PHANTOM_BANK = 16  # precomputed speckle realizations, cycled frame by frame
SPECKLE_SIGMA_PX = (1.6, 0.7)  # (x, y) grain size: speckle is wider laterally than in depth
ECHO_GAIN = 95.0  # gray level of tissue with echogenicity 1 before speckle
ATTENUATION_BOTTOM = 0.45  # brightness at the bottom relative to the top (depth attenuation)
N_LAYERS = 5  # tissue layer boundaries (fascia) across the depth
NERVE_INSIDE_GAIN = 0.35  # hypoechoic nerve interior
NERVE_RIM_GAIN = 2.1  # hyperechoic epineurium
VESSEL_GAIN = 0.08  # anechoic vessel lumen
VESSEL_PULSE_FRAMES = 24  # one heartbeat at ~30 fps: the vessel radius pulsates
MOTION_PERIODS = (240.0, 330.0)  # frames per lateral / axial motion cycle of the nerve


def _speckle(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Fully developed speckle: magnitude of a blurred complex Gaussian field (Rayleigh), mean 1."""
    re = rng.standard_normal((height, width), dtype=np.float32)
    im = rng.standard_normal((height, width), dtype=np.float32)
    sx, sy = SPECKLE_SIGMA_PX
    re = cv2.GaussianBlur(re, (0, 0), sigmaX=sx, sigmaY=sy)
    im = cv2.GaussianBlur(im, (0, 0), sigmaX=sx, sigmaY=sy)
    mag = cv2.magnitude(re, im)
    return mag / float(mag.mean())


def _tissue(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Echogenicity map: wavy horizontal layers, bright fascia lines, depth attenuation."""
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    depths = np.sort(rng.uniform(0.08, 0.95, N_LAYERS)) * height
    levels = rng.uniform(0.35, 1.0, N_LAYERS + 1).astype(np.float32)
    echo = np.full((height, width), levels[0], np.float32)
    fascia_px = max(1.0, height / 200.0)
    for k, depth in enumerate(depths):
        amp = rng.uniform(0.005, 0.02) * height
        wavelength = rng.uniform(0.4, 1.5) * width
        boundary = depth + amp * np.sin(2 * np.pi * xs / wavelength + rng.uniform(0, 2 * np.pi))
        echo = np.where(ys >= boundary, levels[k + 1], echo)
        echo += 0.9 * np.exp(-(((ys - boundary) / fascia_px) ** 2))  # bright fascia line
    echo[: max(1, height // 40)] += 0.8  # skin / gel line at the transducer
    attenuation = np.linspace(1.0, ATTENUATION_BOTTOM, height, dtype=np.float32)[:, None]
    return cv2.GaussianBlur(echo, (0, 0), 1.0) * attenuation


def _ellipse(shape: tuple[int, int], center: tuple[int, int], axes: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, center, axes, 0, 0, 360, 255, thickness=-1)
    return mask


class PhantomSource:
    """Deterministic ultrasound-like frames: speckle, layered tissue, depth attenuation, a slowly
    moving hypoechoic oval with a bright rim (the nerve) and a pulsating dark vessel beside it.

    Gray uint8 frames of width x height, endless (stop with --max-frames). Everything costly is
    precomputed at init (a bank of speckled backgrounds and gain patches), so a read is a copy
    plus two small multiplies. ``truth(index)`` is the exact nerve mask (uint8 0/255).
    """

    def __init__(self, width: int = PHANTOM_WIDTH, height: int = PHANTOM_HEIGHT, seed: int = 0):
        if width < 64 or height < 48:
            raise SourceError(f"phantom size {width}x{height} is too small; use at least 64x48")
        self.info = SourceInfo(PHANTOM_LABEL)
        self.size = (width, height)
        self._index = 0
        rng = np.random.default_rng(seed)
        tissue = _tissue(rng, height, width) * ECHO_GAIN
        self._bank = [
            np.clip(tissue * _speckle(rng, height, width), 0, 255).astype(np.uint8)
            for _ in range(PHANTOM_BANK)
        ]
        self._build_nerve(rng, width, height)
        self._build_vessel(rng)
        self._build_motion(rng, width, height)

    def _build_nerve(self, rng: np.random.Generator, width: int, height: int) -> None:
        a = max(6, int(width * rng.uniform(0.05, 0.08)))  # semi-axes in px
        b = max(4, int(height * rng.uniform(0.045, 0.07)))
        rim = max(2, round(min(a, b) / 6))
        pad = 3
        shape = (2 * (b + pad) + 1, 2 * (a + pad) + 1)
        c = (a + pad, b + pad)
        self._nerve_mask = _ellipse(shape, c, (a, b))
        inner = _ellipse(shape, c, (a - rim, b - rim))
        gain = np.ones(shape, np.float32)
        gain[self._nerve_mask > 0] = NERVE_RIM_GAIN
        gain[inner > 0] = NERVE_INSIDE_GAIN
        # Fascicles: the honeycomb look, bright septa between dark bundles.
        for _ in range(int(rng.integers(3, 7))):
            fx = int(c[0] + rng.uniform(-0.5, 0.5) * a)
            fy = int(c[1] + rng.uniform(-0.5, 0.5) * b)
            cv2.circle(gain, (fx, fy), max(1, rim // 2), 1.0, thickness=-1)
        self._nerve_gain = cv2.GaussianBlur(gain, (0, 0), 0.8)
        self._nerve_axes = (a, b)

    def _build_vessel(self, rng: np.random.Generator) -> None:
        a, b = self._nerve_axes
        radius = max(3, int(0.8 * b))
        r_max = int(radius * 1.1) + 1
        pad = 2
        shape = (2 * (r_max + pad) + 1,) * 2
        c = (r_max + pad, r_max + pad)
        patches = []
        for j in range(VESSEL_PULSE_FRAMES):
            r = int(round(radius * (1.0 + 0.08 * math.sin(2 * math.pi * j / VESSEL_PULSE_FRAMES))))
            gain = np.ones(shape, np.float32)
            gain[_ellipse(shape, c, (r, r)) > 0] = VESSEL_GAIN
            patches.append(cv2.GaussianBlur(gain, (0, 0), 0.8))
        self._vessel_gains = patches
        side = 1 if rng.random() < 0.5 else -1
        # Offset of the vessel patch centre from the nerve centre; patches never overlap.
        dx = side * (a + 3 + r_max + pad + 4)
        self._vessel_offset = (dx, int(rng.integers(-b // 2, b // 2 + 1)))

    def _build_motion(self, rng: np.random.Generator, width: int, height: int) -> None:
        nh, nw = self._nerve_gain.shape
        vh, vw = self._vessel_gains[0].shape
        dx, dy = self._vessel_offset
        # Extent of the nerve+vessel group around the nerve centre, so both stay in the frame.
        left = max(nw // 2, vw // 2 - dx)
        right = max(nw // 2, vw // 2 + dx)
        top = max(nh // 2, vh // 2 - dy, int(0.2 * height))
        bottom = max(nh // 2, vh // 2 + dy)
        x_lo, x_hi = left, width - 1 - right
        y_lo, y_hi = top, height - 1 - bottom
        if x_hi < x_lo or y_hi < y_lo:
            raise SourceError(f"phantom size {width}x{height} is too small for its nerve")
        # Nerves sit in the upper half of a regional-block image: centre a bit above the middle.
        self._mid = ((x_lo + x_hi) / 2, y_lo + 0.45 * (y_hi - y_lo))
        self._amp = (min(0.12 * width, (x_hi - x_lo) / 2), min(0.05 * height, 0.45 * (y_hi - y_lo)))
        self._phase = (rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi))

    def nerve_center(self, index: int) -> tuple[int, int]:
        """Nerve centre (x, y) in frame pixels at frame ``index``."""
        px, py = MOTION_PERIODS
        x = self._mid[0] + self._amp[0] * math.sin(2 * math.pi * index / px + self._phase[0])
        y = self._mid[1] + self._amp[1] * math.sin(2 * math.pi * index / py + self._phase[1])
        return int(round(x)), int(round(y))

    @staticmethod
    def _apply(image: np.ndarray, gain: np.ndarray, cx: int, cy: int) -> None:
        h, w = gain.shape
        y0, x0 = cy - h // 2, cx - w // 2
        roi = image[y0 : y0 + h, x0 : x0 + w]
        cv2.multiply(roi, gain, dst=roi, dtype=cv2.CV_8U)  # saturating, in place

    def frame(self, index: int) -> np.ndarray:
        """The gray uint8 frame number ``index`` (HxW)."""
        image = self._bank[index % PHANTOM_BANK].copy()
        cx, cy = self.nerve_center(index)
        self._apply(image, self._nerve_gain, cx, cy)
        dx, dy = self._vessel_offset
        self._apply(image, self._vessel_gains[index % VESSEL_PULSE_FRAMES], cx + dx, cy + dy)
        return image

    def truth(self, index: int) -> np.ndarray:
        """The exact nerve mask of frame ``index``: uint8 0/255, HxW."""
        width, height = self.size
        mask = np.zeros((height, width), np.uint8)
        h, w = self._nerve_mask.shape
        cx, cy = self.nerve_center(index)
        y0, x0 = cy - h // 2, cx - w // 2
        mask[y0 : y0 + h, x0 : x0 + w] = self._nerve_mask
        return mask

    def read(self) -> Frame:
        frame = new_frame(self.frame(self._index), self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        """Nothing to release (kept for the FrameSource protocol)."""


@functools.lru_cache(maxsize=4)
def _cached_phantom(width: int, height: int, seed: int) -> PhantomSource:
    return PhantomSource(width, height, seed)


def phantom_pair(
    index: int, width: int = PHANTOM_WIDTH, height: int = PHANTOM_HEIGHT, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(gray uint8 frame, nerve mask uint8 0/255) of phantom frame ``index``; deterministic."""
    phantom = _cached_phantom(width, height, seed)
    return phantom.frame(index), phantom.truth(index)
