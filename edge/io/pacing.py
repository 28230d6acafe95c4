"""Paced: the one real-time pacing wrapper. A file, a folder, the phantom or a DICOM cine
plays at a frame rate (``--fps``, or the source's own: ``--realtime``, a watched cine)
instead of as fast as the model runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from edge.errors import SourceError
from edge.types import Frame, FrameSource, SourceInfo


class Paced:
    """Wrap ``source`` so that each read() waits until its frame is due.

    fps: the rate; None = the source's own (``source.info.fps``), looked up frame by frame
    (a folder of cines may change rate from file to file; a frame with no rate is not held).
    A loop slower than the rate is never made to catch up in a burst: pacing restarts from
    the late frame. ``info`` is the source's, with this rate and ``paced`` set.
    """

    def __init__(self, source: FrameSource, fps: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if fps is not None and not fps > 0:
            raise SourceError(f"frame rate {fps}: give a positive --fps, e.g. --fps 30")
        self.source = source
        self._fps = None if fps is None else float(fps)
        self._clock, self._sleep = clock, sleep
        self._due: float | None = None

    @property
    def info(self) -> SourceInfo:
        inner = self.source.info
        return replace(inner, fps=self._fps or inner.fps, paced=True)

    def read(self) -> Frame | None:
        frame = self.source.read()
        if frame is None:
            return None
        rate = self._fps or self.source.info.fps
        now = self._clock()
        if not rate:
            self._due = None  # nothing to keep time by: the next timed frame starts afresh
            return frame
        if self._due is not None and self._due > now:
            self._sleep(self._due - now)
        self._due = max(self._due or now, now) + 1.0 / rate
        return frame

    def close(self) -> None:
        self.source.close()
