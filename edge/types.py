"""The seams of the device pipeline: one protocol per seam (see docs/edge.md).

    FrameSource -> preprocess -> Backend.run -> postprocess -> overlay -> Sink

Kept free of heavy imports so every module (and tests) can use these names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

NAME_DIGITS = 6  # Frame.name for sources without file names: zero-padded index ("000042")


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


def new_frame(image: np.ndarray, index: int, name: str | None = None) -> Frame:
    """A Frame captured now; ``name`` defaults to the zero-padded index."""
    return Frame(image, index, name or f"{index:0{NAME_DIGITS}d}", time.monotonic())


ROI = tuple[int, int, int, int]  # (x, y, w, h) in frame pixels


@dataclass(frozen=True)
class SourceInfo:
    """What a frame source knows about its frames, declared by every FrameSource as ``info``
    (the loop, the sinks and the wrappers read it; none of them probes a source's attributes).

    label: names the source in messages ("camera 0", "clip.mp4", "the phantom").
    live:  frames come at the device's pace and reads never end by themselves (cameras,
           streams, the Pi camera): the latest-frame wrapper is on by default.
    fps:   the source's own frame rate (a camera's mode, a video's or a DICOM cine's rate);
           None = unknown. It also sets the frame rate of recordings.
    roi:   the image region to crop when no --roi is given (a DICOM ultrasound region);
           None = the whole frame.
    pixel_area_mm2: the area of one frame pixel (a DICOM ultrasound region): nerve areas in
           mm2; None = unknown, areas in pixels.
    paced: reads are spaced one frame period apart (edge.io.pacing.Paced), not as fast as
           the loop asks.
    pace_when_watched: a recording meant to play at its own rate when someone watches it
           (a DICOM cine, in a window or --serve); open_source paces it then.
    """

    label: str
    live: bool = False
    fps: float | None = None
    roi: ROI | None = None
    pixel_area_mm2: float | None = None
    paced: bool = False
    pace_when_watched: bool = False


@runtime_checkable
class FrameSource(Protocol):
    """Anything that yields frames.

    ``read()`` returns the next Frame; None when a file or folder has ended; raises
    edge.errors.BadFrame for one undecodable frame (the next read moves past it) and
    edge.errors.SourceLost when a live source delivered nothing for its whole retry budget.
    ``info`` says what the source knows (SourceInfo); it may change as a source moves from
    file to file (a folder of DICOM cines with different rates).
    """

    @property
    def info(self) -> SourceInfo: ...

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
class ClassResult:
    """One structure of a frame (multi-class models; a nerve-only model has one, "nerve").

    id, name, color ("#rrggbb"), safety: from the sidecar's class list (edge.model.metadata).
    mask: uint8 0/255 at the frame's size, this class alone (classes may overlap).
    detected / area_px: any pixel left after this class's threshold and min area; its pixels.
    near_centre: a safety structure within the centre-line band (edge.model.postprocess).
    """

    id: int
    name: str
    color: str
    safety: bool
    mask: np.ndarray
    detected: bool
    area_px: int
    near_centre: bool = False


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
    area_mm2: nerve area in mm2 when the source knows its pixel size (DICOM), else None.
    presence: presence-head probability when the model has one, else None.
    fps:     rolling FPS at this frame.
    stage_ms: the last per-stage timings in milliseconds (capture, preprocess, ...).
    classes: per-structure results in the sidecar's class order (None: not computed).
    class_map: uint8 HxW class ids (0 = background, safety classes drawn last) for
             multi-class models; None for a nerve-only model (``mask`` is the whole story).
    safety_warning: a safety structure is near the image's vertical centre line.
    """

    frame_index: int
    name: str
    frame: np.ndarray
    mask: np.ndarray
    prob: np.ndarray | None = None
    overlay: np.ndarray | None = None
    detected: bool = False
    area_px: int = 0
    area_mm2: float | None = None
    presence: float | None = None
    fps: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)
    classes: list[ClassResult] | None = None
    class_map: np.ndarray | None = None
    safety_warning: bool = False


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
