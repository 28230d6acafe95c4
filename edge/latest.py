"""LatestFrame: keep only the newest frame of a source (DESIGN principle 3).

Cameras and streams queue frames in driver/decoder buffers; a loop slower than the camera then
works on frames that are seconds old. A daemon reader thread drains the source continuously and
keeps only the newest frame, so read() never returns a stale one. Frames replaced before anyone
read them are counted in ``.dropped``. It is a wrapper, not a flag inside every source.
"""

from __future__ import annotations

import logging
import threading

from edge.types import Frame, FrameSource

logger = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 2.0  # how long close() waits for the reader thread before giving up on it


class LatestFrame:
    """Wrap ``source``: read() blocks until a frame newer than the last returned one arrives,
    returns None once the source has ended (after its last frame), and re-raises any
    exception the reader thread met. close() stops the thread and closes the source."""

    def __init__(self, source: FrameSource) -> None:
        self.source = source
        self.live = source.live
        self.fps = getattr(source, "fps", None)
        self.dropped = 0
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

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self.source.read()
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
        with self._cond:
            self._cond.wait_for(lambda: self._fresh or self._ended or self._closed)
            if self._fresh and not self._closed:
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
