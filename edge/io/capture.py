"""--capture DIR: keep raw frames while the clinician scans, for labelling later (docs/clinic.md).

A tap on the source (like edge.io.latest's wrapper): every frame the loop reads passes through
``CaptureTap.read``, and at most one every ``every_s`` seconds is saved as a lossless PNG at its
full size and bit depth, before any overlay is drawn. Frames where the model sees no nerve are
saved like any other: a clinic's "no nerve" frames are training data too.

Each PNG is encoded in memory, written to a hidden temp file in DIR and renamed into place
(edge.fsutil.atomic_path): Ctrl-C, SIGTERM or a power cut leaves whole frames and, at worst, a
hidden ``.*.tmp.png`` that image readers skip and the next capture run deletes. The PNGs already
in DIR count toward the disk cap, so a restarted service does not grow the folder past it; when
the cap is reached, capture stops with one warning and the run goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import cv2

from edge import log
from edge.errors import OutputError
from edge.fsutil import TMP_PREFIX, TMP_SUFFIX, atomic_write_bytes, check_writable_dir
from edge.types import Frame, SourceInfo

DEFAULT_EVERY_S = 1.0  # one frame a second: a 3-minute scan gives ~180 frames to choose from
DEFAULT_MAX_MB = 2000.0  # ~5,000 frames of 640x480 PNG: a small share of a 32 GB card
MB = 1_000_000


def folder_bytes(folder: Path) -> int:
    """Bytes of the PNGs already in ``folder`` (what counts toward the cap)."""
    return sum(p.stat().st_size for p in folder.glob("*.png") if not p.name.startswith("."))


def remove_stale_temps(folder: Path) -> int:
    """Delete temp files a power cut left in ``folder``; returns how many."""
    stale = list(folder.glob(f"{TMP_PREFIX}*{TMP_SUFFIX}.png"))
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


class CaptureWriter:
    """Saves at most one frame every ``every_s`` seconds into ``folder`` until ``max_mb``.

    Names sort in capture order across runs: ``<UTC date-time>_<frame index>.png``
    (e.g. ``20261206-101935-123_f000042.png``).
    """

    def __init__(self, folder: str | Path, every_s: float = DEFAULT_EVERY_S,
                 max_mb: float = DEFAULT_MAX_MB, clock: Callable[[], float] = time.monotonic,
                 warn: Callable[[str], None] = log.warn) -> None:
        if every_s < 0 or max_mb <= 0:
            raise OutputError(f"--capture {folder}: use --capture-every >= 0 and "
                              f"--capture-max-mb > 0 (got {every_s:g} s, {max_mb:g} MB)")
        self.folder = check_writable_dir(Path(folder), "--capture")
        remove_stale_temps(self.folder)
        self.every_s, self.cap_bytes = every_s, int(max_mb * MB)
        self.clock, self.warn = clock, warn
        self.used = folder_bytes(self.folder)
        self.saved = 0
        self.saved_bytes = 0
        self.full = False
        self._next = float("-inf")

    def offer(self, frame: Frame) -> bool:
        """Save ``frame`` if it is due and the cap allows; True when it was saved."""
        now = self.clock()
        if now < self._next or self.full:
            return False
        ok, data = cv2.imencode(".png", frame.image)  # lossless, 8- or 16-bit, gray or BGR
        if not ok:
            raise OutputError(f"--capture {self.folder}: cannot encode frame {frame.index} "
                              f"as PNG")
        if self.used + data.nbytes > self.cap_bytes:
            self.full = True
            self.warn(f"--capture {self.folder}: the disk cap of {self.cap_bytes / MB:g} MB "
                      f"is reached ({self.saved} frame(s) saved by this run); capture stops, "
                      f"the run goes on: free space or raise --capture-max-mb")
            return False
        atomic_write_bytes(self.folder / self.name_for(frame), data.tobytes())
        self._next = now + self.every_s
        self.used += data.nbytes
        self.saved += 1
        self.saved_bytes += data.nbytes
        return True

    @staticmethod
    def name_for(frame: Frame) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")[:-3]
        return f"{stamp}_f{frame.index:06d}.png"

    def summary(self) -> dict:
        return {"folder": str(self.folder), "saved": self.saved,
                "saved_mb": round(self.saved_bytes / MB, 3), "cap_reached": self.full}


class CaptureTap:
    """A FrameSource that hands every frame it reads to a CaptureWriter, then to the loop;
    its ``info`` is the wrapped source's (edge.types.SourceInfo)."""

    def __init__(self, source, writer: CaptureWriter) -> None:
        self.source, self.writer = source, writer

    @property
    def info(self) -> SourceInfo:
        return self.source.info

    def read(self) -> Frame | None:
        frame = self.source.read()
        if frame is not None:
            self.writer.offer(frame)
        return frame

    def close(self) -> None:
        self.source.close()


def tap(source, folder: str | None, every_s: float = DEFAULT_EVERY_S,
        max_mb: float = DEFAULT_MAX_MB):
    """``source`` wrapped to save its raw frames into ``folder`` (unchanged when None)."""
    return source if not folder else CaptureTap(source, CaptureWriter(folder, every_s, max_mb))


def summary_line(summary: dict) -> str:
    cap = " (disk cap reached)" if summary["cap_reached"] else ""
    return (f"edge-run: captured {summary['saved']} frame(s), {summary['saved_mb']:g} MB, "
            f"in {summary['folder']}{cap}")
