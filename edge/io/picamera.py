"""PiCameraSource: the Raspberry Pi camera through picamera2 (libcamera), imported inside the
class: it comes from the OS packages, only on a Pi."""

from __future__ import annotations

import logging

import numpy as np

from edge.errors import SourceError, SourceLost
from edge.io.backoff import retry
from edge.io.videocapture import DEFAULT_RETRY_S, reconnect_policy
from edge.types import Frame, SourceInfo, new_frame

logger = logging.getLogger(__name__)

PICAMERA_DEFAULT_SIZE = (640, 480)  # width, height when none is asked for
PICAMERA_LABEL = "the Pi camera"
PICAMERA_HELP = (
    "picamera2 comes from the OS, not pip: `sudo apt install python3-picamera2`, and create "
    "the venv with `python3 -m venv --system-site-packages`"
)
PICAMERA_NUMPY_HELP = (
    "numpy in this venv is not the one python3-picamera2 was built for; see docs/deploy-pi.md"
)


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


class PiCameraSource:
    """Raspberry Pi camera through picamera2 (libcamera); live. Delivers gray frames: the Y
    plane of a YUV420 video configuration, the cheapest way to get luminance off the ISP.
    A camera that stops delivering is retried with backoff for up to ``retry_s`` seconds."""

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
        self.info = SourceInfo(PICAMERA_LABEL, live=True, fps=fps)
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
        def log(_attempt: int, wait: float) -> None:
            logger.warning("Pi camera stopped delivering frames; retrying in %.2f s", wait)

        image = self._capture()
        if image is None:
            image = retry(self._capture, reconnect_policy(self._retry_s), on_wait=log)
        if image is None:
            raise SourceLost.after(self.info.label, self._retry_s)
        frame = new_frame(image, self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        try:
            self._cam.stop()
        finally:
            self._cam.close()
