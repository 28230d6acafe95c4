"""Frame sources: one protocol (edge.types.FrameSource), one small class per kind, one factory.

    open_source(SourceConfig(kind="camera", target=0))     USB/V4L2 camera or frame grabber
    open_source(SourceConfig(kind="video", target="a.mp4")) video file or rtsp:// / http:// stream
    open_source(SourceConfig(kind="images", target="dir"))  image folder (tif/png/jpg/bmp, 8/16-bit)
    open_source(SourceConfig(kind="picamera"))              Raspberry Pi camera (picamera2)
    open_source(SourceConfig(kind="phantom"))               built-in synthetic ultrasound
    open_source(SourceConfig(kind="dicom", target="a.dcm"))  DICOM file or folder (edge.io.dicom)

The kinds live in their own modules (camera.py, files.py, picamera.py, phantom.py, dicom/);
this one maps a SourceConfig onto them and adds the two wrappers. Every source declares what
it knows as ``info`` (edge.types.SourceInfo); the wrappers pass it on.

Live sources (cameras, streams, the Pi camera) are wrapped in edge.io.latest.LatestFrame
unless ``latest=False``, so the loop always gets the newest frame instead of a seconds-old
buffer. A live source that stops delivering is reopened with exponential backoff for up to
``retry_s`` seconds, then raises SourceLost (a frozen stream whose reads block is caught by
LatestFrame's watchdog within the same budget). Files and folders end with read() -> None; an
undecodable frame in them raises BadFrame and the next read moves on. ``realtime`` (or an
``fps`` for a file) plays files, folders and the phantom at their frame rate, and a watched
DICOM cine plays at its own: edge.io.pacing.Paced. Optional hardware libraries (picamera2)
are imported inside the class that needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.errors import SourceError
from edge.io.camera import CameraSource
from edge.io.capture import CaptureTap
from edge.io.files import ImageDirSource, VideoFileSource, is_stream_url
from edge.io.latest import LatestFrame
from edge.io.pacing import Paced
from edge.io.phantom import PHANTOM_HEIGHT, PHANTOM_WIDTH, PhantomSource
from edge.io.picamera import PiCameraSource
from edge.io.videocapture import DEFAULT_RETRY_S
from edge.types import FrameSource, SourceInfo

MIN_STALL_S = 1.0  # a live source always gets this long to deliver its next frame
FIRST_FRAME_S = 10.0  # ... and this long for its first (cameras and RTSP take a while to start)


@dataclass(frozen=True)
class SourceConfig:
    """Which frames to read.

    kind:    "camera" | "video" | "images" | "picamera" | "phantom" | "dicom".
    target:  camera index (0 or "0") or device path ("/dev/video2"); video path or stream URL;
             image folder (or one image file). Unused by picamera and phantom.
    width, height: requested capture size for cameras (None = device default); frame size
             for the phantom (None = 580x420, the Kaggle frame size).
    fps:     cameras: requested capture rate. Files, folders, the phantom: play at this rate
             (as ``realtime``); None = as fast as the model runs.
    realtime: play files, folders and the phantom at their own rate (the video's FPS, or
             ``fps``) instead of as fast as possible; live sources are real time already.
    loop:    restart video files and image folders at the end (ignored for live sources).
    latest:  keep only the newest frame (reader thread); None = on for live sources only.
    retry_s: how long a live source may deliver nothing (reopened with backoff meanwhile)
             before it counts as lost (SourceLost).
    seed:    phantom seed (same seed and index -> identical frame).
    """

    kind: str = "phantom"
    target: str | int | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    realtime: bool = False
    loop: bool = False
    latest: bool | None = None
    retry_s: float = DEFAULT_RETRY_S
    seed: int = 0


def _needs_target(cfg: SourceConfig, message: str) -> str:
    if cfg.target is None:
        raise SourceError(message)
    return str(cfg.target)


def _open_dicom(cfg: SourceConfig) -> FrameSource:
    """DICOM files and cines: edge.io.dicom (extra [dicom]), imported only when asked."""
    from edge.io.dicom.read import DicomSource

    target = _needs_target(cfg, "DICOM source needs a file or folder: --dicom PATH")
    return DicomSource(target, cfg.loop)


_OPENERS: dict[str, Callable[[SourceConfig], FrameSource]] = {
    "camera": lambda c: CameraSource(c.target, c.width, c.height, c.fps, c.retry_s),
    "video": lambda c: VideoFileSource(_needs_target(
        c, "video source needs a path or URL: --video clip.mp4"), c.loop, c.retry_s),
    "images": lambda c: ImageDirSource(_needs_target(
        c, "image source needs a folder: --images DIR"), c.loop),
    "picamera": lambda c: PiCameraSource(c.width, c.height, c.fps, c.retry_s),
    "phantom": lambda c: PhantomSource(c.width or PHANTOM_WIDTH, c.height or PHANTOM_HEIGHT,
                                       c.seed),
    "dicom": _open_dicom,
}


def pacing(cfg: SourceConfig, info: SourceInfo,
           watched: bool = False) -> tuple[bool, float | None]:
    """(pace or not, at which rate: None = the source's own, frame by frame). Live sources
    never; else --fps, or --realtime at the source's own rate, or a cine meant to be watched
    (``info.pace_when_watched``) when it is. SourceError when realtime has no rate to use."""
    if info.live:
        return False, None
    if cfg.fps:
        return True, cfg.fps
    if cfg.realtime and not info.fps:
        what = cfg.kind if cfg.target is None else f"{cfg.kind} {cfg.target}"
        raise SourceError(f"--realtime: {what} has no frame rate of its own; give one with "
                          f"--fps, e.g. --fps 30")
    return cfg.realtime or (watched and info.pace_when_watched), None


def open_source(cfg: SourceConfig, watched: bool = False) -> FrameSource:
    """Open the source ``cfg`` describes. ``watched``: someone sees the frames live (a window,
    --serve), so a recording meant to be watched (a DICOM cine) plays at its own rate.
    Files, folders and the phantom are paced when asked (``realtime`` or ``fps``); live ones
    get the latest-frame wrapper (with a stall watchdog) unless cfg.latest is False (files
    and folders only when cfg.latest is True). Raises SourceError."""
    opener = _OPENERS.get(cfg.kind)
    if opener is None:
        raise SourceError(f"unknown source kind {cfg.kind!r}; use one of {', '.join(_OPENERS)}")
    source = opener(cfg)
    try:
        paced, rate = pacing(cfg, source.info, watched)
    except SourceError:
        source.close()
        raise
    if paced:
        source = Paced(source, rate)  # inside LatestFrame: a paced file behaves like a camera
    live = source.info.live
    if not (live if cfg.latest is None else cfg.latest):
        return source
    stall_s = max(cfg.retry_s, MIN_STALL_S) if live else None
    return LatestFrame(source, stall_s=stall_s, first_frame_s=max(stall_s or 0, FIRST_FRAME_S))


def innermost(source: FrameSource) -> FrameSource:
    """The source under the wrappers (pacing, latest frame, --capture): what DICOM outputs
    refer to."""
    while isinstance(source, (Paced, LatestFrame, CaptureTap)):
        source = source.source
    return source


def source_from_uri(text: str) -> SourceConfig:
    """A SourceConfig from one string, jetson-utils videoSource style: "phantom", "picamera",
    "0" or "/dev/video0" (camera), "rtsp://..." / "http://..." (stream), a .dcm file (dicom),
    an existing folder (images), any other path (video)."""
    spec = text.strip()
    lowered = spec.lower()
    if lowered in ("phantom", "picamera"):
        return SourceConfig(kind=lowered)
    if spec.isdigit():
        return SourceConfig(kind="camera", target=int(spec))
    if spec.startswith("/dev/video") or spec.startswith("/dev/v4l/"):
        return SourceConfig(kind="camera", target=spec)
    if is_stream_url(spec):
        return SourceConfig(kind="video", target=spec)
    if lowered.startswith("file://"):
        spec = spec[len("file://") :]
    if Path(spec).suffix.lower() == ".dcm":
        return SourceConfig(kind="dicom", target=spec)
    if Path(spec).is_dir():
        return SourceConfig(kind="images", target=spec)
    return SourceConfig(kind="video", target=spec)
