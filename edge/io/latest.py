"""LatestFrame: keep only the newest frame of a source (DESIGN principle 3).

Cameras and streams queue frames in driver/decoder buffers; a loop slower than the camera then
works on frames that are seconds old. A daemon reader thread drains the source continuously and
keeps only the newest frame, so read() never returns a stale one. Frames replaced before anyone
read them are counted in ``.dropped``. It is a wrapper, not a flag inside every source.

It is also the watchdog of a live source: a stream that freezes with its read() blocked
inside the driver (OpenCV's FFmpeg reader waits ~30 s) raises SourceLost from read() after
``stall_s`` without a new frame, instead of hanging the loop.
"""

from __future__ import annotations

import collections
import logging
import threading

from edge.errors import BadFrame, SourceLost
from edge.types import Frame, FrameSource, SourceInfo

logger = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 2.0  # how long close() waits for the reader thread before giving up on it


class LatestFrame:
    """Wrap ``source``: read() blocks until a frame newer than the last returned one arrives,
    returns None once the source has ended (after its last frame), and re-raises any
    exception the reader thread met (BadFrame ones one by one, the reader going on).
    close() stops the thread and closes the source.

    stall_s: read() raises SourceLost when no new frame came for this long (None = wait
    forever, for files); first_frame_s: the same for the very first frame.
    ``info`` is the wrapped source's.
    """

    def __init__(self, source: FrameSource, stall_s: float | None = None,
                 first_frame_s: float | None = None) -> None:
        self.source = source
        self.dropped = 0
        self._stall_s = stall_s
        self._first_frame_s = first_frame_s if first_frame_s is not None else stall_s
        self._returned_any = False
        self._bad: collections.deque[BadFrame] = collections.deque()
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._fresh = False  # the stored frame has not been returned yet
        self._ended = False
        self._error: BaseException | None = None
        self._closed = False
        self._reader_done = False
        self._close_source_on_exit = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="latest-frame", daemon=True)
        self._thread.start()

    @property
    def info(self) -> SourceInfo:
        return self.source.info

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    frame = self.source.read()
                except BadFrame as bad:  # the source has moved past it: hand it on, go on
                    with self._cond:
                        self._bad.append(bad)
                        self._cond.notify_all()
                    continue
                with self._cond:
                    if frame is None:
                        self._ended = True
                        return
                    if self._fresh:
                        self.dropped += 1
                    self._frame, self._fresh = frame, True
                    self._cond.notify_all()
        except BaseException as exc:  # handed to the consumer thread: read() re-raises it
            with self._cond:
                self._error = exc
        finally:
            with self._cond:
                self._ended = True
                self._reader_done = True
                close_here = self._close_source_on_exit
                self._cond.notify_all()
            if close_here:
                self.source.close()

    def read(self) -> Frame | None:
        timeout = self._stall_s if self._returned_any else self._first_frame_s
        with self._cond:
            ready = self._cond.wait_for(
                lambda: self._fresh or self._ended or self._closed or self._bad, timeout)
            if not ready:
                raise SourceLost.after(self.source.info.label, timeout)
            if self._bad and not self._closed:
                raise self._bad.popleft()
            if self._fresh and not self._closed:
                self._returned_any = True
                self._fresh = False
                return self._frame
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            return None

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._stop.set()
        self._thread.join(JOIN_TIMEOUT_S)
        with self._cond:
            if not self._reader_done:
                # The thread is blocked inside source.read(); closing the source under it is
                # unsafe for OpenCV captures, so the thread closes it when read() returns.
                self._close_source_on_exit = True
                logger.warning("frame reader did not stop within %.1f s", JOIN_TIMEOUT_S)
                return
        self.source.close()
