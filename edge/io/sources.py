"""Frame sources: one protocol (edge.types.FrameSource), one small class per kind, one factory.

    open_source(SourceConfig(kind="camera", target=0))     USB/V4L2 camera or frame grabber
    open_source(SourceConfig(kind="video", target="a.mp4")) video file or rtsp:// / http:// stream
    open_source(SourceConfig(kind="images", target="dir"))  image folder (tif/png/jpg/bmp, 8/16-bit)
    open_source(SourceConfig(kind="picamera"))              Raspberry Pi camera (picamera2)
    open_source(SourceConfig(kind="phantom"))               built-in synthetic ultrasound
    open_source(SourceConfig(kind="dicom", target="a.dcm"))  DICOM file or folder (edge.io.dicom)

Live sources (cameras, streams, the Pi camera) are wrapped in edge.io.latest.LatestFrame unless
``latest=False``, so the loop always gets the newest frame instead of a seconds-old buffer.
A live source that stops delivering is reopened with exponential backoff for up to
``retry_s`` seconds, then raises SourceLost (a frozen stream whose reads block is caught by
LatestFrame's watchdog within the same budget). Files and folders end with read() -> None; an
undecodable frame in them raises BadFrame and the next read moves on. ``realtime`` (or an
``fps`` for a file) plays files, folders and the phantom at their frame rate (Paced).
Optional hardware libraries (picamera2) are imported inside the class that needs them.
The phantom lives in edge.io.phantom.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.errors import BadFrame, SourceError, SourceLost
from edge.io.latest import LatestFrame
from edge.io.phantom import PHANTOM_HEIGHT, PHANTOM_WIDTH, PhantomSource, phantom_pair
from edge.types import Frame, FrameSource, new_frame

# Re-exported: callers written before the phantom got its own module import it from here.
__all__ = ["PHANTOM_HEIGHT", "PHANTOM_WIDTH", "PhantomSource", "phantom_pair"]

logger = logging.getLogger(__name__)

DEFAULT_RETRY_S = 5.0  # total time a stalled live source is retried before the run ends
FIRST_BACKOFF_S = 0.1  # first wait before reopening a stalled source; doubles per retry
MAX_BACKOFF_S = 2.0  # longest single wait between reopen attempts
IMAGE_SUFFIXES = frozenset({".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp"})
LABEL_STEM_SUFFIX = "_mask"  # Kaggle nerve labels sit beside the images: NAME_mask.png
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
BAD_FRAME_LOOKAHEAD = 8  # reads tried past a failed one before a video file counts as ended
MIN_STALL_S = 1.0  # a live source always gets this long to deliver its next frame
FIRST_FRAME_S = 10.0  # ... and this long for its first (cameras and RTSP take a while to start)
# FFmpeg's own log lines ("[mov,mp4,...] moov atom not found", "error while decoding MB") go
# straight to stderr before the kit's one-line error or bad-frame warning says the same with the
# fix. OpenCV reads this once, when its FFmpeg backend starts (the first capture of the
# process); -8 is AV_LOG_QUIET. A user who wants them sets it (e.g. 32, AV_LOG_INFO) first.
FFMPEG_LOGLEVEL_ENV = "OPENCV_FFMPEG_LOGLEVEL"
FFMPEG_QUIET = "-8"
CAMERA_HELP = (
    "check the camera's cable and power, list the cameras with `ls /dev/video*` or "
    "`v4l2-ctl --list-devices` and give another index or device path, or run without a "
    "camera: --video clip.mp4 or --source phantom"
)
V4L2_DEVICES = "/dev/video*"  # where Linux puts V4L2 cameras and grabbers
PICAMERA_HELP = (
    "picamera2 comes from the OS, not pip: `sudo apt install python3-picamera2`, and create "
    "the venv with `python3 -m venv --system-site-packages`"
)
PICAMERA_NUMPY_HELP = (
    "numpy in this venv is not the one python3-picamera2 was built for; see docs/deploy-pi.md"
)


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


# --------------------------------------------------------------------------- OpenCV captures
CaptureFactory = Callable[[Any, int], Any]  # (target, api preference) -> cv2.VideoCapture-like


class _CaptureSource:
    """Shared reading for CameraSource and VideoFileSource (anything cv2.VideoCapture opens).

    ``capture_factory`` is the seam tests use to put a stand-in capture object in place.
    """

    live: bool

    def __init__(
        self,
        label: str,
        target: Any,
        api: int,
        capture_factory: CaptureFactory,
        *,
        loop: bool = False,
        retry_s: float = DEFAULT_RETRY_S,
    ) -> None:
        self.label = label
        self._target = target
        self._api = api
        self._factory = capture_factory
        self._loop = loop
        self._retry_s = retry_s
        self._index = 0
        self._pending: np.ndarray | None = None
        self._bad_ahead = 0  # broken frames found while looking past one (see _skip_bad)
        self._cap = self._open()
        self.fps: float | None = None

    def _open(self) -> Any:
        os.environ.setdefault(FFMPEG_LOGLEVEL_ENV, FFMPEG_QUIET)  # before FFmpeg starts
        cap = self._factory(self._target, self._api)
        self._configure(cap)
        return cap

    def _configure(self, cap: Any) -> None:
        """Hook: cameras request size/fps on every (re)open."""

    def _grab(self) -> np.ndarray | None:
        ok, image = self._cap.read()
        return image if ok and image is not None else None

    def read(self) -> Frame | None:
        if self._bad_ahead:
            self._bad_ahead -= 1
            raise self._bad_frame()
        image, self._pending = self._pending, None
        if image is None:
            image = self._grab()
        if image is None and not self.live:
            image = self._skip_bad()
        if image is None and self._loop and not self.live:
            image = self._rewind()
        if image is None and self.live:
            image = self._reconnect()
        if image is None:
            return None
        frame = new_frame(image, self._index)
        self._index += 1
        return frame

    def _bad_frame(self) -> BadFrame:
        self._index += 1  # a broken frame keeps its number: later frames match the file's
        return BadFrame(f"{self.label}: frame {self._index - 1} cannot be decoded")

    def _skip_bad(self) -> np.ndarray | None:
        """A failed read inside a file is a broken frame; at its end it is the end. Look a few
        frames ahead: None at the end, else keep the good frame and raise BadFrame (once per
        broken frame, this read and the next ones)."""
        for broken in range(1, BAD_FRAME_LOOKAHEAD + 1):
            image = self._grab()
            if image is not None:
                self._pending, self._bad_ahead = image, broken - 1
                raise self._bad_frame()
        return None

    def _rewind(self) -> np.ndarray | None:
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        image = self._grab()
        if image is None:  # some containers cannot seek: reopen instead
            self._cap.release()
            self._cap = self._open()
            image = self._grab()
        return image

    def _reconnect(self) -> np.ndarray | None:
        """Reopen with exponential backoff for up to retry_s seconds in total."""
        deadline = time.monotonic() + self._retry_s
        delay = FIRST_BACKOFF_S
        attempt = 0
        while (remaining := deadline - time.monotonic()) > 0:
            attempt += 1
            wait = min(delay, remaining)
            logger.warning(
                "%s stopped delivering frames; reopening in %.2f s (retry %d, budget %.1f s)",
                self.label,
                wait,
                attempt,
                self._retry_s,
            )
            time.sleep(wait)
            self._cap.release()
            self._cap = self._open()
            image = self._grab() if self._cap.isOpened() else None
            if image is not None:
                logger.warning("%s is delivering frames again", self.label)
                return image
            delay = min(delay * 2.0, MAX_BACKOFF_S)
        raise SourceLost.after(self.label, self._retry_s)

    def close(self) -> None:
        self._cap.release()


def _camera_target(target: str | int | None) -> tuple[int | str, int]:
    """0 / "0" -> (0, CAP_ANY); "/dev/video2" -> (path, CAP_V4L2)."""
    if target is None:
        return 0, cv2.CAP_ANY
    if isinstance(target, int) or str(target).strip().isdigit():
        return int(target), cv2.CAP_ANY
    api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
    return str(target), api


class CameraSource(_CaptureSource):
    """USB/V4L2 camera or frame grabber by index (0) or device path ("/dev/video2").

    Requested width/height/fps are set with CAP_PROP_*; the values the device actually gave
    are in ``.actual_size`` and ``.fps`` (devices round to modes they support).
    """

    def __init__(
        self,
        target: str | int | None = 0,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        retry_s: float = DEFAULT_RETRY_S,
        capture_factory: CaptureFactory = cv2.VideoCapture,
    ) -> None:
        self.live = True
        self._request = (width, height, fps)
        device, api = _camera_target(target)
        super().__init__(f"camera {device}", device, api, capture_factory, retry_s=retry_s)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"cannot open camera {device}: {self._why(device)} "
                              f"({self._tried(device)}); {CAMERA_HELP}")
        self.actual_size = (
            int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or None
        logger.info(
            "camera %s: %dx%d @ %s fps (asked %s)",
            device,
            *self.actual_size,
            self.fps,
            self._request,
        )

    @staticmethod
    def _why(device: int | str) -> str:
        if isinstance(device, str) and Path(device).exists():
            return "the device exists but did not open (busy, or no permission: join 'video')"
        return "no such device"

    @staticmethod
    def _tried(device: int | str) -> str:
        """What was opened, and which V4L2 devices this machine has (Linux)."""
        if not sys.platform.startswith("linux"):
            return f"tried index {device} through OpenCV"
        tried = f"/dev/video{device}" if isinstance(device, int) else str(device)
        present = sorted(str(p) for p in Path("/dev").glob(V4L2_DEVICES.rsplit("/", 1)[1]))
        found = ", ".join(present) if present else "none"
        return f"tried {tried} through OpenCV; {V4L2_DEVICES} here: {found}"

    def _configure(self, cap: Any) -> None:
        width, height, fps = self._request
        # A 1-frame driver buffer keeps V4L2 latency low; backends that ignore it return False.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        for prop, value in (
            (cv2.CAP_PROP_FRAME_WIDTH, width),
            (cv2.CAP_PROP_FRAME_HEIGHT, height),
            (cv2.CAP_PROP_FPS, fps),
        ):
            if value:
                cap.set(prop, float(value))

    @classmethod
    def from_config(cls, cfg: SourceConfig) -> CameraSource:
        return cls(cfg.target, cfg.width, cfg.height, cfg.fps, cfg.retry_s)


def is_stream_url(target: str | int | None) -> bool:
    return isinstance(target, str) and target.lower().startswith(STREAM_SCHEMES)


class VideoFileSource(_CaptureSource):
    """A video file (live=False, optional loop) or a stream URL such as rtsp:// (live=True).

    Grayscale videos read back as 3-channel BGR: preprocess converts them.
    """

    def __init__(
        self,
        target: str | Path,
        loop: bool = False,
        retry_s: float = DEFAULT_RETRY_S,
        capture_factory: CaptureFactory = cv2.VideoCapture,
    ) -> None:
        text = str(target)
        self.live = is_stream_url(text)
        if not self.live:
            _check_video_path(Path(text))
        super().__init__(text, text, cv2.CAP_ANY, capture_factory, loop=loop, retry_s=retry_s)
        if not self._cap.isOpened():
            raise SourceError(self._open_error(text))
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or None
        if not self.live:
            # Read the first frame now: an undecodable file fails at open, before any output.
            self._pending = self._grab()
            if self._pending is None:
                self._cap.release()
                raise SourceError(self._open_error(text))

    def _open_error(self, text: str) -> str:
        if self.live:
            return f"cannot open stream {text}: check the URL, the network and the camera's login"
        return (
            f"cannot read video {text}: not a video this OpenCV build decodes, or cut short "
            f"(a recording that was not closed); convert it with "
            f"`ffmpeg -i {text} -c:v mpeg4 clip.mp4`, or record it again"
        )

    @classmethod
    def from_config(cls, cfg: SourceConfig) -> VideoFileSource:
        if cfg.target is None:
            raise SourceError("video source needs a path or URL: --video clip.mp4")
        return cls(str(cfg.target), cfg.loop, cfg.retry_s)


def _check_video_path(path: Path) -> None:
    if not path.exists():
        raise SourceError(f"video file not found: {path}; check the path")
    if path.is_dir():
        raise SourceError(f"{path} is a folder, not a video; use --images {path}")


# --------------------------------------------------------------------------- image folders
def _natural_key(path: Path) -> list[Any]:
    """'1_2' sorts before '1_10' (frame numbers without zero padding, as in Kaggle names)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_images(folder: Path) -> list[Path]:
    """Image files in ``folder`` in natural order, without Kaggle label files (*_mask.*).
    Raises SourceError when the folder cannot be listed (permissions, not a folder)."""
    try:
        names = list(folder.iterdir())
    except OSError as e:
        raise SourceError(
            f"cannot list image folder {folder} ({e.strerror or e}); check that it is a "
            f"folder you may read (chmod +rx), or pick another"
        ) from e
    return sorted(
        (
            p
            for p in names
            if p.suffix.lower() in IMAGE_SUFFIXES
            and not p.stem.endswith(LABEL_STEM_SUFFIX)
            and p.is_file()
        ),
        key=_natural_key,
    )


class ImageDirSource:
    """Images of a folder in natural sort order (or one image file); live=False.

    Files: .tif/.tiff/.png/.jpg/.jpeg/.bmp, any case, read unchanged (8- and 16-bit kept;
    preprocess.to_gray8 handles 16-bit). Files whose stem ends in "_mask" are label files of
    the Kaggle nerve layout and are skipped, so ``--images kaggle-nerve/train`` runs on the
    images only. Frame.name is the file stem, so saved masks line up with their inputs.
    """

    def __init__(self, target: str | Path, loop: bool = False) -> None:
        self.live = False
        self.fps: float | None = None
        self._loop = loop
        self._files = self._find(Path(target))
        self._pos = 0
        self._index = 0
        self._good_in_pass = 0  # a looping folder of only broken files must still end

    @staticmethod
    def _find(path: Path) -> list[Path]:
        if not path.exists():
            raise SourceError(f"image folder not found: {path}; check the path")
        if path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise SourceError(f"{path} is not an image folder; use --video {path} for videos")
            return [path]
        files = list_images(path)
        if not files:
            raise SourceError(
                f"no images in folder {path}: expected .tif/.png/.jpg/.bmp files "
                f"(files named *_mask.* are labels and are skipped)"
            )
        return files

    def read(self) -> Frame | None:
        if self._pos >= len(self._files):
            if not self._loop or not self._good_in_pass:
                return None
            self._pos, self._good_in_pass = 0, 0
        path = self._files[self._pos]
        self._pos += 1
        self._index += 1
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:  # moved past it already: the next read() gives the next file
            raise BadFrame(f"cannot read image {path}: not an image OpenCV decodes "
                           f"(corrupt or truncated); remove or replace it")
        self._good_in_pass += 1
        return new_frame(image, self._index - 1, path.stem)

    def close(self) -> None:
        self._files = []

    @classmethod
    def from_config(cls, cfg: SourceConfig) -> ImageDirSource:
        if cfg.target is None:
            raise SourceError("image source needs a folder: --images DIR")
        return cls(str(cfg.target), cfg.loop)


# --------------------------------------------------------------------------- Raspberry Pi camera
def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def picamera_import_error(exc: BaseException) -> str:
    """One line for a picamera2 that does not import: not installed, or built against another
    numpy than the venv's ("numpy.dtype size changed" is a ValueError; the other direction an
    ImportError or AttributeError naming numpy)."""
    text = _first_line(exc)
    if isinstance(exc, ModuleNotFoundError) and exc.name == "picamera2":
        return f"--picamera needs the picamera2 module: {PICAMERA_HELP}"
    if isinstance(exc, ValueError) or "numpy" in text.lower():
        return f"--picamera: picamera2 fails to import ({text}): {PICAMERA_NUMPY_HELP}"
    return f"--picamera: picamera2 fails to import ({text}): {PICAMERA_HELP}"


PICAMERA_DEFAULT_SIZE = (640, 480)  # width, height when none is asked for


class PiCameraSource:
    """Raspberry Pi camera through picamera2 (libcamera). Delivers gray frames: the Y plane
    of a YUV420 video configuration, the cheapest way to get luminance off the ISP."""

    def __init__(
        self,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        retry_s: float = DEFAULT_RETRY_S,
    ) -> None:
        try:
            from picamera2 import Picamera2  # optional: only on a Pi, from the OS packages
        except (ImportError, ValueError, AttributeError) as exc:
            raise SourceError(picamera_import_error(exc)) from exc
        self.live = True
        self.label = "the Pi camera"
        self.fps = fps
        self._size = (width or PICAMERA_DEFAULT_SIZE[0], height or PICAMERA_DEFAULT_SIZE[1])
        self._retry_s = retry_s
        self._index = 0
        try:
            self._cam = Picamera2()
            controls = {"FrameRate": float(fps)} if fps else {}
            config = self._cam.create_video_configuration(
                main={"size": self._size, "format": "YUV420"}, controls=controls
            )
            self._cam.configure(config)
            self._cam.start()
        except Exception as exc:  # picamera2 raises IndexError/RuntimeError when no camera
            raise SourceError(
                f"cannot open the Pi camera: {exc}; check the ribbon cable and "
                f"`rpicam-hello --list-cameras`"
            ) from exc

    def _capture(self) -> np.ndarray | None:
        try:
            yuv = self._cam.capture_array("main")
        except Exception as exc:  # a camera that drops off the bus raises here
            logger.warning("Pi camera capture failed: %s", exc)
            return None
        width, height = self._size
        # YUV420 arrives as (height * 3/2, stride): the first `height` rows are Y (gray).
        return np.ascontiguousarray(yuv[:height, :width])

    def read(self) -> Frame | None:
        image = self._capture()
        deadline = time.monotonic() + self._retry_s
        delay = FIRST_BACKOFF_S
        while image is None and (remaining := deadline - time.monotonic()) > 0:
            logger.warning("Pi camera stopped delivering frames; retrying in %.2f s", delay)
            time.sleep(min(delay, remaining))
            image = self._capture()
            delay = min(delay * 2.0, MAX_BACKOFF_S)
        if image is None:
            raise SourceLost.after(self.label, self._retry_s)
        frame = new_frame(image, self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        try:
            self._cam.stop()
        finally:
            self._cam.close()

    @classmethod
    def from_config(cls, cfg: SourceConfig) -> PiCameraSource:
        return cls(cfg.width, cfg.height, cfg.fps, cfg.retry_s)


# --------------------------------------------------------------------------- real-time pacing
class Paced:
    """Wrap a file source so it plays at ``fps`` (a video's own rate, or --fps) instead of as
    fast as the model runs: each read() waits until its frame is due. A loop slower than the
    file is never made to catch up in a burst: pacing restarts from the late frame."""

    def __init__(self, source: FrameSource, fps: float,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not fps > 0:
            raise SourceError(f"frame rate {fps}: give a positive --fps, e.g. --fps 30")
        self.source = source
        self.live = source.live
        self.fps = float(fps)
        self._period = 1.0 / self.fps
        self._clock, self._sleep = clock, sleep
        self._due: float | None = None

    def __getattr__(self, name: str) -> Any:  # optional attributes of the wrapped source
        if name == "source":
            raise AttributeError(name)
        return getattr(self.source, name)

    def read(self) -> Frame | None:
        frame = self.source.read()
        if frame is None:
            return None
        now = self._clock()
        if self._due is not None and self._due > now:
            self._sleep(self._due - now)
        self._due = max(self._due or now, now) + self._period
        return frame

    def close(self) -> None:
        self.source.close()


def pace_rate(cfg: SourceConfig, source: FrameSource) -> float | None:
    """The rate a non-live source is played at: --fps, else with realtime the source's own
    rate; None = as fast as possible. SourceError when realtime has no rate to use."""
    if source.live or not (cfg.realtime or cfg.fps):
        return None
    rate = cfg.fps or getattr(source, "fps", None)
    if not rate:
        what = cfg.kind if cfg.target is None else f"{cfg.kind} {cfg.target}"
        raise SourceError(f"--realtime: {what} has no frame rate of its own; give one with "
                          f"--fps, e.g. --fps 30")
    return rate


# --------------------------------------------------------------------------- DICOM
def _open_dicom(cfg: SourceConfig) -> FrameSource:
    """DICOM files and cines: edge.io.dicom (extra [dicom]), imported only when asked."""
    from edge.io.dicom.read import DicomSource

    return DicomSource.from_config(cfg)


# --------------------------------------------------------------------------- factory
_OPENERS: dict[str, Callable[[SourceConfig], FrameSource]] = {
    "camera": CameraSource.from_config,
    "video": VideoFileSource.from_config,
    "images": ImageDirSource.from_config,
    "picamera": PiCameraSource.from_config,
    "phantom": PhantomSource.from_config,
    "dicom": _open_dicom,
}


def open_source(cfg: SourceConfig) -> FrameSource:
    """Open the source ``cfg`` describes. Files, folders and the phantom are paced when asked
    (``realtime`` or ``fps``); live ones get the latest-frame wrapper (with a stall watchdog)
    unless cfg.latest is False (files and folders only when cfg.latest is True).
    Raises SourceError."""
    opener = _OPENERS.get(cfg.kind)
    if opener is None:
        raise SourceError(f"unknown source kind {cfg.kind!r}; use one of {', '.join(_OPENERS)}")
    source = opener(cfg)
    try:
        rate = pace_rate(cfg, source)
    except SourceError:
        source.close()
        raise
    if rate is not None:
        source = Paced(source, rate)  # inside LatestFrame: a paced file behaves like a camera
    if not (source.live if cfg.latest is None else cfg.latest):
        return source
    stall_s = max(cfg.retry_s, MIN_STALL_S) if source.live else None
    return LatestFrame(source, stall_s=stall_s, first_frame_s=max(stall_s or 0, FIRST_FRAME_S))


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
