"""Sinks: where results go (edge.types.Sink). Each checks at construction that it can work and
raises OutputError naming the path and the fix, so a bad --record/--save-masks fails before the
first frame and nothing is left half-written.

    NullSink()                  headless: nothing drawn, nothing written
    WindowSink(title)           a cv2 window; q or Esc stops the run
    VideoFileSink(path, fps)    .mkv (FFV1), .avi (MJPG); .mp4 is recorded as <name>.mkv (below)
    MaskDirSink(folder)         one PNG per frame, 0/255 at the frame's size, named <name>.png

Recordings survive a power cut (measured in benchmarks/results/recording.md): an MP4 written by
OpenCV has its index (moov atom) only at the end, so a kill -9 or a power cut leaves an
unplayable file, and this OpenCV build ignores OPENCV_FFMPEG_WRITER_OPTIONS' fragmented-MP4
flags. Matroska and AVI play up to the cut. So ``--record out.mp4`` records the same MPEG-4
video into ``out.mkv`` and says so on stderr (``ffmpeg -i out.mkv -c copy out.mp4`` makes an
MP4 of it later, without re-encoding). The file is also fsync'ed every FSYNC_EVERY_S, so a
power cut (not only a kill) loses at most the last seconds.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np

from edge.errors import OutputError
from edge.fsutil import atomic_write_bytes, check_writable_dir, check_writable_file
from edge.log import note
from edge.types import FrameResult

DEFAULT_VIDEO_FPS = 30.0  # when the source does not know its rate (phantom, image folders)
STOP_KEYS = frozenset({ord("q"), ord("Q"), 27})  # q or Esc
WAIT_KEY_MS = 1  # cv2.waitKey pumps the GUI event loop; 1 ms keeps the loop fast
VIDEO_FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "FFV1"}  # what this OpenCV writes
# Containers that are unplayable when cut, and what is written instead (same codec).
CRASH_SAFE_CONTAINER = {".mp4": ".mkv"}
FSYNC_EVERY_S = 5.0  # the page cache may otherwise hold ~30 s of video (vm.dirty_expire)
PROBE_SIZE = (64, 48)  # width, height of the throw-away file that proves the codec works
NO_GUI_HELP = "use --headless, --record out.mp4 or --serve 8080"


def _bgr(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image


class NullSink:
    """Headless: counts frames, writes nothing."""

    needs_overlay = False

    def __init__(self) -> None:
        self.frames = 0

    def write(self, result: FrameResult) -> None:
        self.frames += 1

    def should_stop(self) -> bool:
        return False

    def close(self) -> None:
        """Nothing to release."""


def gui_problem() -> str | None:
    """Why this process cannot open a window, or None when it can."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().replace(" ", "").upper() == "GUI:NONE":
            return "this OpenCV build has no GUI windows (opencv-python-headless)"
    linux = sys.platform.startswith("linux")
    if linux and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        # Checked before namedWindow: Qt/GTK abort the whole process without a display.
        return "there is no display ($DISPLAY is not set)"
    return None


class WindowSink:
    """Shows the overlay (or the plain frame) in a window; q/Esc or closing it stops the run."""

    needs_overlay = True

    def __init__(self, title: str = "nerve-edge") -> None:
        problem = gui_problem()
        if problem is not None:
            raise OutputError(f"{problem}; {NO_GUI_HELP}")
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            detail = (getattr(exc, "msg", None) or str(exc)).strip().splitlines()[0]
            raise OutputError(f"cannot open a window ({detail}); {NO_GUI_HELP}") from exc
        self.title = title
        self._stop = False

    def write(self, result: FrameResult) -> None:
        image = result.overlay if result.overlay is not None else result.frame
        cv2.imshow(self.title, image)
        key = cv2.waitKey(WAIT_KEY_MS)
        if key >= 0 and (key & 0xFF) in STOP_KEYS:
            self._stop = True
        elif cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self._stop = True  # the user closed the window

    def should_stop(self) -> bool:
        return self._stop

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(WAIT_KEY_MS)  # lets the GUI thread actually remove the window
        except cv2.error:
            pass  # already closed by the user


class _Fsyncer:
    """Flushes a file to the disk every ``every_s`` from a daemon thread: after a power cut
    the file holds what was written up to the last sync, not only what the kernel happened
    to write back. fsync releases the GIL, so a slow SD card never stalls the loop."""

    def __init__(self, path: Path, every_s: float) -> None:
        self._fd = os.open(path, os.O_RDONLY)  # fsync of any descriptor flushes the file
        self._stop = threading.Event()
        self.syncs = 0
        self._thread = threading.Thread(target=self._run, args=(every_s,), daemon=True,
                                        name="record-fsync")
        self._thread.start()

    def _run(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            self.sync()

    def sync(self) -> None:
        try:
            os.fsync(self._fd)
            self.syncs += 1
        except OSError:
            pass  # a full or failing disk is the writer's error to report, not this thread's

    def close(self) -> None:
        """Stop the thread, flush one last time (after the writer's trailer), close."""
        self._stop.set()
        self._thread.join()
        self.sync()
        os.close(self._fd)


class VideoFileSink:
    """Records the overlay (or the plain frame) to a video; the size comes from the first frame.

    ``path`` ending in .mp4 is recorded as the same name with .mkv (CRASH_SAFE_CONTAINER, see
    the module doc) unless ``crash_safe`` is False; ``self.path`` is the file really written,
    and ``log`` (stderr by default) is told once. close() (called by the loop's finally, also
    on Ctrl-C and SIGTERM) writes the trailer and flushes the file; it never raises.
    """

    needs_overlay = True

    def __init__(self, path: str | os.PathLike, fps: float | None = DEFAULT_VIDEO_FPS,
                 crash_safe: bool = True, log=note) -> None:
        self.requested = Path(path)
        suffix = self.requested.suffix.lower()
        fourcc = VIDEO_FOURCC.get(suffix)
        if fourcc is None:
            raise OutputError(
                f"--record {self.requested}: unknown video type; use a name ending in "
                f"{', '.join(VIDEO_FOURCC)}"
            )
        safe_suffix = CRASH_SAFE_CONTAINER.get(suffix) if crash_safe else None
        self.path = self.requested.with_suffix(safe_suffix) if safe_suffix else self.requested
        for target in {self.requested, self.path}:
            if target.is_dir():
                raise OutputError(f"--record {target} is a folder; give a file name like out.mkv")
        check_writable_file(self.requested, "--record")  # same folder as the .mkv it may become
        self._fourcc = cv2.VideoWriter_fourcc(*fourcc)
        self.fps = float(fps) if fps and fps > 0 else DEFAULT_VIDEO_FPS
        self._probe_codec()
        self._log = log
        self._writer: cv2.VideoWriter | None = None
        self._syncer: _Fsyncer | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0
        if safe_suffix and log is not None:
            log(f"record: writing {self.path}, not {self.requested.name}: an MP4 does not play "
                f"after a power cut or kill, Matroska plays up to the cut (same MPEG-4 video; "
                f"for an MP4 later: ffmpeg -i {self.path.name} -c copy {self.requested.name})")

    def _probe_codec(self) -> None:
        """Open a tiny writer beside the target: fails now, not after the first frame."""
        suffix = self.path.suffix
        fd, probe = tempfile.mkstemp(dir=self.path.parent, prefix=".probe-", suffix=suffix)
        os.close(fd)
        try:
            writer = cv2.VideoWriter(probe, self._fourcc, self.fps, PROBE_SIZE, True)
            ok = writer.isOpened()
            writer.release()
        finally:
            os.unlink(probe)
        if not ok:
            raise OutputError(
                f"--record {self.requested}: this OpenCV build cannot write "
                f"{self.path.suffix} video; try {', '.join(VIDEO_FOURCC)}"
            )

    def _open(self, width: int, height: int) -> cv2.VideoWriter:
        writer = cv2.VideoWriter(str(self.path), self._fourcc, self.fps, (width, height), True)
        if not writer.isOpened():
            raise OutputError(f"--record {self.requested}: cannot open the video writer")
        self._syncer = _Fsyncer(self.path, FSYNC_EVERY_S)
        return writer

    def write(self, result: FrameResult) -> None:
        image = _bgr(result.overlay if result.overlay is not None else result.frame)
        height, width = image.shape[:2]
        if self._writer is None:
            self._size = (width, height)
            self._writer = self._open(width, height)
        elif (width, height) != self._size:
            # Image folders may mix sizes; a video has one size.
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)
        self.frames += 1

    def should_stop(self) -> bool:
        return False

    def close(self) -> None:
        # Detach first: a second close (or a second Ctrl-C inside this one) finds nothing.
        writer, self._writer = self._writer, None
        syncer, self._syncer = self._syncer, None
        try:
            if writer is not None:
                writer.release()
        except (cv2.error, OSError) as exc:
            # Raising here would also lose the run's summary and report; the Matroska / AVI
            # file plays up to its last complete cluster without the trailer.
            detail = (getattr(exc, "msg", None) or str(exc)).strip().splitlines()[0]
            if self._log is not None:
                self._log(f"record: finishing {self.path} failed ({detail}); it plays up to "
                          f"the last seconds before the failure")
        finally:
            if syncer is not None:
                syncer.close()


def write_png_atomic(path: Path, image: np.ndarray) -> None:
    """Encode to PNG in memory and rename into place: a killed run leaves no half file."""
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise OutputError(f"cannot encode {path} as PNG")
    atomic_write_bytes(path, data.tobytes())  # the user's umask, like any file they write


class MaskDirSink:
    """One PNG per frame in ``folder`` (created), named ``<result.name>.png``: the input file's
    stem for image folders, the frame number otherwise. Pixels are 0/255 at the frame's size,
    or, for a multi-class model, class ids (0 = background, pixel = the sidecar class id)."""

    needs_overlay = False

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        check_writable_dir(self.folder, "--save-masks")
        self.frames = 0

    def write(self, result: FrameResult) -> None:
        ids = result.class_map is not None  # multi-class: the ids are the data, keep them
        mask = result.class_map if ids else result.mask
        height, width = result.frame.shape[:2]
        if mask.shape[:2] != (height, width):
            mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
        if not ids and (mask.dtype != np.uint8 or mask.max(initial=0) not in (0, 255)):
            mask = np.where(mask > 0, 255, 0).astype(np.uint8)
        write_png_atomic(self.folder / f"{result.name}.png", mask)
        self.frames += 1

    def should_stop(self) -> bool:
        return False

    def close(self) -> None:
        """Every PNG is complete when write() returns: nothing to flush."""
