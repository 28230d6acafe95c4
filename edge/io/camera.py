"""CameraSource: a USB/V4L2 camera or frame grabber, by index (0) or device path."""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2

from edge.errors import SourceError
from edge.io.videocapture import DEFAULT_RETRY_S, CaptureFactory, CaptureSource

logger = logging.getLogger(__name__)

CAMERA_HELP = (
    "check the camera's cable and power, list the cameras with `ls /dev/video*` or "
    "`v4l2-ctl --list-devices` and give another index or device path, or run without a "
    "camera: --video clip.mp4 or --source phantom"
)
V4L2_DEVICES = "/dev/video*"  # where Linux puts V4L2 cameras and grabbers


def _camera_target(target: str | int | None) -> tuple[int | str, int]:
    """0 / "0" -> (0, CAP_ANY); "/dev/video2" -> (path, CAP_V4L2)."""
    if target is None:
        return 0, cv2.CAP_ANY
    if isinstance(target, int) or str(target).strip().isdigit():
        return int(target), cv2.CAP_ANY
    api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
    return str(target), api


class CameraSource(CaptureSource):
    """USB/V4L2 camera or frame grabber by index (0) or device path ("/dev/video2"); live.

    Requested width/height/fps are set with CAP_PROP_*; the values the device actually gave
    are in ``.actual_size`` and ``info.fps`` (devices round to modes they support).
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
        self._request = (width, height, fps)
        device, api = _camera_target(target)
        super().__init__(f"camera {device}", device, api, capture_factory, live=True,
                         retry_s=retry_s)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"cannot open camera {device}: {self._why(device)} "
                              f"({self._tried(device)}); {CAMERA_HELP}")
        self.actual_size = (
            int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        self.info = replace(self.info, fps=float(self._cap.get(cv2.CAP_PROP_FPS)) or None)
        logger.info("camera %s: %dx%d @ %s fps (asked %s)", device, *self.actual_size,
                    self.info.fps, self._request)

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
