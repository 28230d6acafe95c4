"""What CameraSource and VideoFileSource share: reading anything cv2.VideoCapture opens.

A file's failed read is a broken frame (BadFrame, the next read moves past it) or its end; a
live capture that stops delivering is reopened with exponential backoff (edge.io.backoff) for
up to ``retry_s`` seconds, then raises SourceLost.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from edge.errors import BadFrame, SourceLost
from edge.io.backoff import Backoff, retry
from edge.types import Frame, SourceInfo, new_frame

logger = logging.getLogger(__name__)

DEFAULT_RETRY_S = 5.0  # total time a stalled live source is retried before the run ends
FIRST_BACKOFF_S = 0.1  # first wait before reopening a stalled source; doubles per retry
MAX_BACKOFF_S = 2.0  # longest single wait between reopen attempts
BAD_FRAME_LOOKAHEAD = 8  # reads tried past a failed one before a video file counts as ended
# FFmpeg's own log lines ("[mov,mp4,...] moov atom not found", "error while decoding MB") go
# straight to stderr before the kit's one-line error or bad-frame warning says the same with the
# fix. OpenCV reads this once, when its FFmpeg backend starts (the first capture of the
# process); -8 is AV_LOG_QUIET. A user who wants them sets it (e.g. 32, AV_LOG_INFO) first.
FFMPEG_LOGLEVEL_ENV = "OPENCV_FFMPEG_LOGLEVEL"
FFMPEG_QUIET = "-8"

CaptureFactory = Callable[[Any, int], Any]  # (target, api preference) -> cv2.VideoCapture-like


def reconnect_policy(retry_s: float) -> Backoff:
    """How a live source waits between reopen attempts within its retry budget."""
    return Backoff(first_s=FIRST_BACKOFF_S, max_s=MAX_BACKOFF_S, budget_s=retry_s)


class CaptureSource:
    """Shared reading for CameraSource and VideoFileSource (anything cv2.VideoCapture opens).

    ``capture_factory`` is the seam tests use to put a stand-in capture object in place.
    Subclasses set ``info`` (SourceInfo) once the capture is open.
    """

    info: SourceInfo

    def __init__(self, label: str, target: Any, api: int, capture_factory: CaptureFactory, *,
                 live: bool, loop: bool = False, retry_s: float = DEFAULT_RETRY_S) -> None:
        self.info = SourceInfo(label, live)
        self._target = target
        self._api = api
        self._factory = capture_factory
        self._loop = loop
        self._retry_s = retry_s
        self._index = 0
        self._pending: np.ndarray | None = None
        self._bad_ahead = 0  # broken frames found while looking past one (see _skip_bad)
        self._cap = self._open()

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
        live = self.info.live
        if image is None:
            image = self._grab()
        if image is None and not live:
            image = self._skip_bad()
        if image is None and self._loop and not live:
            image = self._rewind()
        if image is None and live:
            image = self._reconnect()
        if image is None:
            return None
        frame = new_frame(image, self._index)
        self._index += 1
        return frame

    def _bad_frame(self) -> BadFrame:
        self._index += 1  # a broken frame keeps its number: later frames match the file's
        return BadFrame(f"{self.info.label}: frame {self._index - 1} cannot be decoded")

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

    def _reopen_and_grab(self) -> np.ndarray | None:
        self._cap.release()
        self._cap = self._open()
        return self._grab() if self._cap.isOpened() else None

    def _reconnect(self) -> np.ndarray:
        """Reopen with exponential backoff for up to retry_s seconds in total."""
        label = self.info.label

        def log(attempt: int, wait: float) -> None:
            logger.warning(
                "%s stopped delivering frames; reopening in %.2f s (retry %d, budget %.1f s)",
                label, wait, attempt, self._retry_s)

        image = retry(self._reopen_and_grab, reconnect_policy(self._retry_s), on_wait=log)
        if image is None:
            raise SourceLost.after(label, self._retry_s)
        logger.warning("%s is delivering frames again", label)
        return image

    def close(self) -> None:
        self._cap.release()
