"""Frame sources: one protocol (edge.types.FrameSource), one small class per kind, one factory.

    open_source(SourceConfig(kind="camera", target=0))     USB/V4L2 camera or frame grabber
    open_source(SourceConfig(kind="video", target="a.mp4")) video file or rtsp:// / http:// stream
    open_source(SourceConfig(kind="images", target="dir"))  image folder (tif/png/jpg/bmp, 8/16-bit)
    open_source(SourceConfig(kind="picamera"))              Raspberry Pi camera (picamera2)
    open_source(SourceConfig(kind="phantom"))               built-in synthetic ultrasound
    open_source(SourceConfig(kind="dicom", target="a.dcm"))  DICOM file or folder (edge.dicom)

Live sources (cameras, streams, the Pi camera) are wrapped in edge.latest.LatestFrame unless
``latest=False``, so the loop always gets the newest frame instead of a seconds-old buffer.
A live source that stops delivering is reopened with exponential backoff for up to
``retry_s`` seconds, then ends (read() returns None) so the loop still prints its summary.
Optional hardware libraries (picamera2) are imported inside the class that needs them.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.errors import SourceError
from edge.latest import LatestFrame
from edge.types import Frame, FrameSource

logger = logging.getLogger(__name__)

DEFAULT_RETRY_S = 5.0  # total time a stalled live source is retried before the run ends
FIRST_BACKOFF_S = 0.1  # first wait before reopening a stalled source; doubles per retry
MAX_BACKOFF_S = 2.0  # longest single wait between reopen attempts
IMAGE_SUFFIXES = frozenset({".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp"})
LABEL_STEM_SUFFIX = "_mask"  # Kaggle nerve labels sit beside the images: NAME_mask.png
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
NAME_DIGITS = 6  # Frame.name for non-file sources: zero-padded frame index ("000042")
CAMERA_HELP = "list cameras with `v4l2-ctl --list-devices` or try --camera 0"
PICAMERA_HELP = (
    "picamera2 comes from the OS, not pip: `sudo apt install python3-picamera2`, and create "
    "the venv with `python3 -m venv --system-site-packages`"
)

SOURCE_KINDS = ("camera", "video", "images", "picamera", "phantom", "dicom")


@dataclass(frozen=True)
class SourceConfig:
    """Which frames to read.

    kind:    "camera" | "video" | "images" | "picamera" | "phantom" | "dicom".
    target:  camera index (0 or "0") or device path ("/dev/video2"); video path or stream URL;
             image folder (or one image file). Unused by picamera and phantom.
    width, height, fps: requested capture size/rate for cameras (None = device default);
             frame size for the phantom (None = 580x420, the Kaggle frame size).
    loop:    restart video files and image folders at the end (ignored for live sources).
    latest:  keep only the newest frame (reader thread); None = on for live sources only.
    retry_s: how long a live source that stops delivering is reopened before the run ends.
    seed:    phantom seed (same seed and index -> identical frame).
    """

    kind: str = "phantom"
    target: str | int | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    loop: bool = False
    latest: bool | None = None
    retry_s: float = DEFAULT_RETRY_S
    seed: int = 0


def _frame(image: np.ndarray, index: int, name: str | None = None) -> Frame:
    return Frame(image, index, name or f"{index:0{NAME_DIGITS}d}", time.monotonic())


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
        self._label = label
        self._target = target
        self._api = api
        self._factory = capture_factory
        self._loop = loop
        self._retry_s = retry_s
        self._index = 0
        self._pending: np.ndarray | None = None
        self._cap = self._open()
        self.fps: float | None = None

    def _open(self) -> Any:
        cap = self._factory(self._target, self._api)
        self._configure(cap)
        return cap

    def _configure(self, cap: Any) -> None:
        """Hook: cameras request size/fps on every (re)open."""

    def _grab(self) -> np.ndarray | None:
        ok, image = self._cap.read()
        return image if ok and image is not None else None

    def read(self) -> Frame | None:
        image, self._pending = self._pending, None
        if image is None:
            image = self._grab()
        if image is None and self._loop and not self.live:
            image = self._rewind()
        if image is None and self.live:
            image = self._reconnect()
        if image is None:
            return None
        frame = _frame(image, self._index)
        self._index += 1
        return frame

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
                self._label,
                wait,
                attempt,
                self._retry_s,
            )
            time.sleep(wait)
            self._cap.release()
            self._cap = self._open()
            image = self._grab() if self._cap.isOpened() else None
            if image is not None:
                logger.warning("%s is delivering frames again", self._label)
                return image
            delay = min(delay * 2.0, MAX_BACKOFF_S)
        logger.warning("%s: no frames for %.1f s; ending the run", self._label, self._retry_s)
        return None

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
            raise SourceError(f"cannot open camera {device}: {self._why(device)}; {CAMERA_HELP}")
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
            f"cannot read video {text}: not a video this OpenCV build decodes; "
            f"convert it with `ffmpeg -i {text} -c:v mpeg4 clip.mp4`"
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
    """Image files in ``folder`` in natural order, without Kaggle label files (*_mask.*)."""
    return sorted(
        (
            p
            for p in folder.iterdir()
            if p.is_file()
            and p.suffix.lower() in IMAGE_SUFFIXES
            and not p.stem.endswith(LABEL_STEM_SUFFIX)
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
            if not self._loop:
                return None
            self._pos = 0
        path = self._files[self._pos]
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise SourceError(
                f"cannot read image {path}: not an image OpenCV decodes; remove it from the folder"
            )
        self._pos += 1
        frame = _frame(image, self._index, path.stem)
        self._index += 1
        return frame

    def close(self) -> None:
        self._files = []

    @classmethod
    def from_config(cls, cfg: SourceConfig) -> ImageDirSource:
        if cfg.target is None:
            raise SourceError("image source needs a folder: --images DIR")
        return cls(str(cfg.target), cfg.loop)


# --------------------------------------------------------------------------- Raspberry Pi camera
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
        except ImportError as exc:
            raise SourceError(f"--picamera needs the picamera2 module: {PICAMERA_HELP}") from exc
        self.live = True
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
            return None
        frame = _frame(image, self._index)
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


# --------------------------------------------------------------------------- synthetic phantom
PHANTOM_WIDTH = 580  # px, the Kaggle frame size
PHANTOM_HEIGHT = 420
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
        self.live = False
        self.fps: float | None = None
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
        frame = _frame(self.frame(self._index), self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        """Nothing to release (kept for the FrameSource protocol)."""

    @classmethod
    def from_config(cls, cfg: SourceConfig) -> PhantomSource:
        return cls(cfg.width or PHANTOM_WIDTH, cfg.height or PHANTOM_HEIGHT, cfg.seed)


@functools.lru_cache(maxsize=4)
def _cached_phantom(width: int, height: int, seed: int) -> PhantomSource:
    return PhantomSource(width, height, seed)


def phantom_pair(
    index: int, width: int = PHANTOM_WIDTH, height: int = PHANTOM_HEIGHT, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(gray uint8 frame, nerve mask uint8 0/255) of phantom frame ``index``; deterministic."""
    phantom = _cached_phantom(width, height, seed)
    return phantom.frame(index), phantom.truth(index)


# --------------------------------------------------------------------------- DICOM
def _open_dicom(cfg: SourceConfig) -> FrameSource:
    """DICOM files and cines: edge.dicom (extra [dicom]), imported only when asked."""
    from edge.dicom.read import DicomSource

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
    """Open the source ``cfg`` describes; live ones get the latest-frame wrapper unless
    cfg.latest is False (files and folders only when cfg.latest is True). Raises SourceError."""
    opener = _OPENERS.get(cfg.kind)
    if opener is None:
        raise SourceError(f"unknown source kind {cfg.kind!r}; use one of {', '.join(_OPENERS)}")
    source = opener(cfg)
    use_latest = source.live if cfg.latest is None else cfg.latest
    return LatestFrame(source) if use_latest else source


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
