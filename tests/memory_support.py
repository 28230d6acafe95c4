"""Shared by the bounded-memory tests (tests/edge/test_memory_bounded.py, tests/dicom/
test_dicom_memory.py): run edge-run in this process for FRAMES frames under tracemalloc and
compare the Python allocations at two points of the loop, line by line.

The snapshots are taken at the same point of the loop (the capture of frame FIRST, just past
the meter's exact samples, and of the last frame), each after a garbage collection, and
compared per allocation line. A per-frame list (issue 24: the nerve and class areas kept for
the report, ~57 bytes a frame) grows by ~300-600 kB over these 9,000 frames; a bounded run
by a few buffers' worth at most (CPython's method cache keeps some short strings of the HTTP
requests alive: a few kB, bounded by the cache's size).
"""

from __future__ import annotations

import gc
import json
import tracemalloc
import urllib.request
from dataclasses import dataclass, field, replace

import edge.loop
from edge.cli import main
from edge.meter import EXACT_SAMPLES

FRAMES = 20_000
# About half way, once the meter's exact samples gave way to its fixed histogram (a one-time
# switch: buffers freed, others allocated, nothing per frame).
FIRST = EXACT_SAMPLES + 1_000
POLL_EVERY = 200  # frames between two /status.json + /metrics requests (a browser's ~2 Hz)
# One allocation line may grow this much between frame FIRST and FRAMES (9,000 frames):
# 1.8 bytes a frame. The old per-frame area lists grew 35-48 bytes a frame on one line.
MAX_SITE_GROWTH_BYTES = 16 * 1024
MAX_TOTAL_GROWTH_BYTES = 48 * 1024  # all lines together: 5 bytes a frame
TOP = 15  # growers printed on failure
IGNORED = (tracemalloc.__file__, __file__)  # the snapshots and this module's own lists


class SnapshotSource:
    """Wraps the run's source: optionally declares a pixel size (as a DICOM source with an
    ultrasound region does) and takes a tracemalloc snapshot when frames ``at`` are read."""

    def __init__(self, inner, at: tuple[int, ...], pixel_area_mm2: float | None) -> None:
        self._inner = inner
        self._at = at
        self.snapshots: list[tracemalloc.Snapshot] = []
        self.info = inner.info if pixel_area_mm2 is None else replace(
            inner.info, pixel_area_mm2=pixel_area_mm2)

    def read(self):
        frame = self._inner.read()
        if frame is not None and frame.index in self._at:
            gc.collect()  # garbage in reference cycles (HTTP responses) is not kept state
            self.snapshots.append(tracemalloc.take_snapshot())
        return frame

    def close(self) -> None:
        self._inner.close()


class StatusPoller:
    """A sink that asks the --serve server for /status.json and /metrics every POLL_EVERY
    frames (with a sink, the loop builds a FrameResult each frame) and wants the overlay
    drawn (as the window and --record do)."""

    needs_overlay = True

    def __init__(self, port: int) -> None:
        self._base = f"http://127.0.0.1:{port}"
        self.polls = 0
        self.last_status: dict = {}

    def write(self, result) -> None:
        if result.frame_index % POLL_EVERY:
            return
        with urllib.request.urlopen(f"{self._base}/status.json", timeout=10) as answer:
            self.last_status = json.loads(answer.read())
        with urllib.request.urlopen(f"{self._base}/metrics", timeout=10) as answer:
            answer.read()
        self.polls += 1

    def should_stop(self) -> bool:
        return False

    def close(self) -> None:
        pass


@dataclass
class Tracked:
    code: int
    grown: list = field(default_factory=list)  # tracemalloc StatisticDiff, largest first
    poller: StatusPoller | None = None

    @property
    def total(self) -> float:
        return sum(d.size_diff for d in self.grown)

    def failure(self) -> str:
        return (f"allocations grew between frame {FIRST} and {FRAMES} ({self.total} B in "
                f"all):\n" + "\n".join(f"  +{d.size_diff} B (+{d.count_diff} blocks) "
                                       f"{d.traceback}" for d in self.grown[:TOP]))

    def bounded(self) -> bool:
        return (all(d.size_diff <= MAX_SITE_GROWTH_BYTES for d in self.grown)
                and self.total <= MAX_TOTAL_GROWTH_BYTES)


def run_tracked(argv: list[str], monkeypatch, pixel_area_mm2: float | None = None) -> Tracked:
    """edge-run ``argv`` + ``--serve 127.0.0.1:0 --max-frames FRAMES`` (headless, quiet) in
    this process, with the status poller added to its sinks; returns the growing lines."""
    assert FIRST < FRAMES * 0.6
    sources: list[SnapshotSource] = []
    pollers: list[StatusPoller] = []
    open_source, open_sinks = edge.loop.open_source, edge.loop.open_sinks

    def snapshot_source(cfg, watched=False):
        sources.append(SnapshotSource(open_source(cfg, watched), (FIRST, FRAMES - 1),
                                      pixel_area_mm2))
        return sources[-1]

    def with_poller(*args, **kwargs):
        sinks = open_sinks(*args, **kwargs)
        pollers.append(StatusPoller(next(s.port for s in sinks if hasattr(s, "port"))))
        return [*sinks, pollers[-1]]

    monkeypatch.setattr(edge.loop, "open_source", snapshot_source)
    monkeypatch.setattr(edge.loop, "open_sinks", with_poller)
    tracemalloc.start()
    try:
        code = main([*argv, "--headless", "--quiet", "--serve", "127.0.0.1:0",
                     "--max-frames", str(FRAMES)])
    finally:
        tracemalloc.stop()
    if code != 0:
        return Tracked(code)
    first, end = sources[0].snapshots
    keep = [tracemalloc.Filter(False, name) for name in IGNORED]
    diffs = end.filter_traces(keep).compare_to(first.filter_traces(keep), "lineno")
    grown = sorted((d for d in diffs if d.size_diff > 0), key=lambda d: -d.size_diff)
    return Tracked(code, grown, pollers[0])
