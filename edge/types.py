"""The seams of the device pipeline: one protocol per seam (see ../shared/DESIGN.md).

    FrameSource -> preprocess -> Backend.run -> postprocess -> overlay -> Sink

Kept free of heavy imports so every module (and tests) can use these names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class Frame:
    """One captured frame.

    image: HxW (gray) or HxWx3 (BGR) array, uint8 or uint16 as the source delivered it.
    index: 0-based frame counter of the source.
    name:  a stem for output files: the input file's stem for image folders, else
           the zero-padded frame index (``"000042"``).
    timestamp: time.monotonic() when the frame was captured.
    """

    image: np.ndarray
    index: int
    name: str
    timestamp: float


@runtime_checkable
class FrameSource(Protocol):
    """Anything that yields frames. ``read()`` returns None when the source has ended."""

    live: bool  # True for cameras/streams (latest-frame wrapper on by default)

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """A model interpreter. ``run`` takes the float32 model input (1, H, W, C) in the units
    of the model's normalization and returns its outputs as float32 (dequantized with the
    model's own scale/zero-point), in a stable order."""

    input_hw: tuple[int, int]
    input_channels: int
    name: str  # e.g. "tflite(ai_edge_litert)", "onnx(CPUExecutionProvider)"

    def run(self, x: np.ndarray) -> list[np.ndarray]: ...


@dataclass
class FrameResult:
    """Everything a sink may want about one processed frame.

    frame:   the original frame converted to BGR uint8 (what overlays are drawn on).
    mask:    uint8 0/255 at the frame's full size (HxW).
    prob:    float32 probability map at model output size (for debugging/serving).
    overlay: BGR uint8 frame with the nerve drawn and stats text, or None when no sink
             asked for it (headless with no recording skips drawing).
    detected: whether a nerve is present after post-processing.
    area_px: nerve area in frame pixels.
    presence: presence-head probability when the model has one, else None.
    fps:     rolling FPS at this frame.
    stage_ms: the last per-stage timings in milliseconds (capture, preprocess, ...).
    """

    frame_index: int
    name: str
    frame: np.ndarray
    mask: np.ndarray
    prob: np.ndarray | None = None
    overlay: np.ndarray | None = None
    detected: bool = False
    area_px: int = 0
    presence: float | None = None
    fps: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Sink(Protocol):
    """Where results go: a window, a video file, a folder of masks, a web view, nowhere.

    ``needs_overlay`` tells the loop whether to draw the overlay for this sink.
    ``write`` must be quick: a slow consumer drops frames rather than block the loop.
    ``should_stop`` lets a window sink report that the user pressed q/Esc.
    """

    needs_overlay: bool

    def write(self, result: FrameResult) -> None: ...

    def should_stop(self) -> bool: ...

    def close(self) -> None: ...
