"""LatestFrame (edge/io/latest.py): keeps only the newest frame, ends, re-raises, shuts down."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edge.errors import BadFrame, SourceLost
from edge.io import latest
from edge.io.latest import LatestFrame
from edge.types import Frame, SourceInfo

WAIT_S = 5.0  # generous bound for anything that should happen "soon"


class FakeSource:
    """Produces ``count`` frames, one every ``period_s``; optionally raises at frame ``fail_at``
    or blocks forever in read() after the last frame (a hung camera)."""

    def __init__(self, count=10, period_s=0.0, live=True, fail_at=None, hang=False) -> None:
        self.count = count
        self.period_s = period_s
        self.info = SourceInfo("fake", live=live)
        self.fail_at = fail_at
        self.hang = hang
        self.produced = -1  # index of the newest frame handed out
        self.closed = False
        self.unblock = threading.Event()

    def read(self) -> Frame | None:
        nxt = self.produced + 1
        if self.fail_at is not None and nxt == self.fail_at:
            raise RuntimeError("grabber unplugged")
        if nxt >= self.count:
            if self.hang:
                self.unblock.wait()
            return None
        time.sleep(self.period_s)
        self.produced = nxt
        return Frame(np.zeros((2, 2), np.uint8), nxt, f"{nxt:06d}", time.monotonic())

    def close(self) -> None:
        self.closed = True


def test_slow_consumer_gets_newest_frames_and_stale_ones_are_dropped() -> None:
    source = FakeSource(count=60, period_s=0.002)
    wrapper = LatestFrame(source)
    got = []
    while True:
        newest_before = source.produced
        frame = wrapper.read()
        if frame is None:
            break
        # Never an old buffered frame: at most the one the reader is storing right now is newer.
        assert frame.index >= newest_before - 1
        got.append(frame.index)
        time.sleep(0.02)  # a consumer ~10x slower than the source
    wrapper.close()
    assert got == sorted(set(got))  # strictly newer each time, no repeats
    assert got[-1] == 59  # the last frame is still delivered before the end
    assert wrapper.dropped > 0
    assert len(got) + wrapper.dropped == 60  # every frame was either returned or counted


def test_read_blocks_until_a_newer_frame_arrives() -> None:
    wrapper = LatestFrame(FakeSource(count=3, period_s=0.05))
    indices = [wrapper.read().index for _ in range(3)]
    assert indices == [0, 1, 2]
    assert wrapper.read() is None
    assert wrapper.read() is None  # stays ended
    wrapper.close()
    assert wrapper.dropped == 0


def test_reader_exception_is_raised_from_read() -> None:
    wrapper = LatestFrame(FakeSource(count=10, fail_at=2, period_s=0.01))
    with pytest.raises(RuntimeError, match="grabber unplugged"):
        for _ in range(10):
            wrapper.read()
    wrapper.close()


def test_close_stops_the_thread_and_closes_the_source() -> None:
    source = FakeSource(count=10**9, period_s=0.001)
    wrapper = LatestFrame(source)
    assert wrapper.read() is not None
    assert wrapper.info.live is True
    wrapper.close()
    wrapper.close()  # idempotent
    assert not wrapper._thread.is_alive()
    assert source.closed
    assert wrapper.read() is None
    files = LatestFrame(FakeSource(live=False))
    assert files.info.live is False
    files.close()


def test_close_with_a_hung_source_returns_and_closes_it_later(monkeypatch) -> None:
    monkeypatch.setattr(latest, "JOIN_TIMEOUT_S", 0.1)
    source = FakeSource(count=1, hang=True)
    wrapper = LatestFrame(source)
    assert wrapper.read().index == 0
    start = time.monotonic()
    wrapper.close()
    assert time.monotonic() - start < WAIT_S
    assert not source.closed  # not closed under the blocked reader
    source.unblock.set()
    wrapper._thread.join(WAIT_S)
    assert source.closed  # the reader closed it once read() returned


def test_a_hung_live_source_is_lost_after_stall_s() -> None:
    source = FakeSource(count=2, hang=True)
    source.info = SourceInfo("camera 7", live=True)
    wrapper = LatestFrame(source, stall_s=0.3)
    assert wrapper.read().index in (0, 1)
    start = time.monotonic()
    with pytest.raises(SourceLost, match="source camera 7 lost: no frame for 0.3 s"):
        while True:
            wrapper.read()
    assert time.monotonic() - start < WAIT_S
    source.unblock.set()
    wrapper.close()


class BrokenFrames(FakeSource):
    """Frames 0..count-1 where the odd ones cannot be decoded (BadFrame, then the next)."""

    def read(self) -> Frame | None:
        self.produced += 1
        if self.produced >= self.count:
            return None
        if self.produced % 2:
            raise BadFrame(f"frame {self.produced} cannot be decoded")
        return Frame(np.zeros((2, 2), np.uint8), self.produced, "x", time.monotonic())


def test_bad_frames_are_handed_on_and_reading_goes_on() -> None:
    wrapper = LatestFrame(BrokenFrames(count=6, live=False))
    got, bad = [], []
    while True:
        try:
            frame = wrapper.read()
        except BadFrame as e:
            bad.append(str(e))
            continue
        if frame is None:
            break
        got.append(frame.index)
    wrapper.close()
    assert bad == ["frame 1 cannot be decoded", "frame 3 cannot be decoded",
                   "frame 5 cannot be decoded"]
    assert got and set(got) <= {0, 2, 4} and got[-1] == 4  # newest-only may drop good ones


def test_the_wrapped_sources_info_shows_through_and_nothing_else() -> None:
    source = FakeSource(count=1)
    source.info = SourceInfo("cine", fps=25.0, roi=(1, 2, 3, 4), pixel_area_mm2=0.01)
    source.extra = "not forwarded"
    wrapper = LatestFrame(source)
    assert wrapper.info is source.info
    with pytest.raises(AttributeError):
        wrapper.extra  # noqa: B018  no __getattr__: only what the protocol declares
    wrapper.close()
