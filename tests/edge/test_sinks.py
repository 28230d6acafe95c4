"""Sinks (edge/io/sinks.py): what each writes, and unwritable outputs failing at construction."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import OutputError
from edge.io import sinks
from edge.io.sinks import MaskDirSink, NullSink, VideoFileSink, WindowSink
from edge.types import FrameResult, Sink

FRAME_HW = (48, 64)
UNWRITABLE = Path("/proc")  # not writable even for root
requires_proc = pytest.mark.skipif(not UNWRITABLE.is_dir(), reason="needs Linux /proc")


def result(index: int, overlay: bool = False, hw=FRAME_HW) -> FrameResult:
    height, width = hw
    frame = np.full((height, width, 3), 10 * index, np.uint8)
    mask = np.zeros((height, width), np.uint8)
    mask[: height // 2, : width // 3] = 255
    over = np.full_like(frame, 200) if overlay else None
    return FrameResult(index, f"{index:06d}", frame, mask, overlay=over)


def test_every_sink_matches_the_protocol_and_says_if_it_needs_an_overlay(tmp_path: Path) -> None:
    expected = {
        NullSink(): False,
        VideoFileSink(tmp_path / "a.mp4", 10): True,
        MaskDirSink(tmp_path / "m"): False,
    }
    for sink, needs in expected.items():
        assert isinstance(sink, Sink)
        assert sink.needs_overlay is needs
        sink.close()
    assert WindowSink.needs_overlay is True


def test_null_sink_counts_and_never_stops() -> None:
    sink = NullSink()
    for i in range(3):
        sink.write(result(i))
    assert sink.frames == 3 and sink.should_stop() is False


# --------------------------------------------------------------------------- window
def test_window_on_headless_opencv_is_one_clear_line(monkeypatch) -> None:
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  GUI:                NONE\n")
    with pytest.raises(OutputError, match="no GUI windows.*--headless.*--record"):
        WindowSink("t")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="$DISPLAY is an X11 notion")
def test_window_without_display_is_refused_before_opening(monkeypatch) -> None:
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  GUI:      GTK3\n")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(OutputError, match=r"no display.*--headless"):
        WindowSink("t")


class FakeGui:
    """cv2's window functions as a GUI build would behave; records what was shown."""

    def __init__(self, monkeypatch, keys=(), visible=1.0, fail_open=False) -> None:
        self.shown: list[np.ndarray] = []
        self.keys = list(keys)
        self.visible = visible
        self.fail_open = fail_open
        monkeypatch.setattr(sinks, "gui_problem", lambda: None)
        for name in ("namedWindow", "imshow", "waitKey", "getWindowProperty", "destroyWindow"):
            monkeypatch.setattr(cv2, name, getattr(self, name))

    def namedWindow(self, title, flags=0):  # noqa: N802 - OpenCV's names
        if self.fail_open:
            raise cv2.error("The function is not implemented")

    def imshow(self, title, image):
        self.shown.append(image)

    def waitKey(self, ms):  # noqa: N802
        return self.keys.pop(0) if self.keys else -1

    def getWindowProperty(self, title, prop):  # noqa: N802
        return self.visible

    def destroyWindow(self, title):  # noqa: N802
        pass


def test_window_shows_overlay_else_frame_and_stops_on_q(monkeypatch) -> None:
    gui = FakeGui(monkeypatch, keys=[-1, ord("q")])
    sink = WindowSink("nerve")
    sink.write(result(1, overlay=True))
    assert not sink.should_stop()
    sink.write(result(2))
    assert sink.should_stop()
    assert gui.shown[0][0, 0, 0] == 200 and gui.shown[1][0, 0, 0] == 20
    sink.close()


def test_window_stops_on_esc_and_when_closed(monkeypatch) -> None:
    FakeGui(monkeypatch, keys=[27])
    esc = WindowSink()
    esc.write(result(0))
    assert esc.should_stop()
    FakeGui(monkeypatch, visible=0.0)
    closed = WindowSink()
    closed.write(result(0))
    assert closed.should_stop()


def test_window_that_cannot_open_is_an_output_error(monkeypatch) -> None:
    FakeGui(monkeypatch, fail_open=True)
    with pytest.raises(OutputError, match="cannot open a window.*--headless"):
        WindowSink()


# --------------------------------------------------------------------------- video file
@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv"])
def test_video_sink_writes_a_playable_file_with_every_frame(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"out{suffix}"
    sink = VideoFileSink(path, fps=15)
    for i in range(6):
        sink.write(result(i, overlay=i % 2 == 0))
    sink.write(result(6, hw=(30, 40)))  # a different size is resized, not dropped
    sink.close()
    sink.close()  # idempotent (the loop's finally after Ctrl-C)
    capture = cv2.VideoCapture(str(sink.path))  # .mp4 is recorded as .mkv (crash-safe)
    frames = []
    while (got := capture.read())[0]:
        frames.append(got[1])
    capture.release()
    assert len(frames) == 7 == sink.frames
    assert frames[0].shape == (*FRAME_HW, 3)
    assert abs(int(frames[0].mean()) - 200) < 8  # frame 0 carried an overlay
    assert abs(int(frames[1].mean()) - 10) < 8  # frame 1 did not: the plain frame
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no probe left


def test_video_sink_writes_gray_frames_as_color(tmp_path: Path) -> None:
    sink = VideoFileSink(tmp_path / "gray.avi", fps=None)
    gray = FrameResult(0, "000000", np.full(FRAME_HW, 90, np.uint8), np.zeros(FRAME_HW, np.uint8))
    sink.write(gray)
    sink.close()
    ok, image = cv2.VideoCapture(str(tmp_path / "gray.avi")).read()
    assert ok and image.shape == (*FRAME_HW, 3)


def test_video_sink_refuses_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"--record .*out.gif: unknown video type.*\.mp4"):
        VideoFileSink(tmp_path / "out.gif")
    with pytest.raises(OutputError, match="does not exist"):
        VideoFileSink(tmp_path / "no" / "such" / "out.mp4")
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        VideoFileSink(tmp_path / "dir.mp4")
    assert list(tmp_path.iterdir()) == [tmp_path / "dir.mp4"]  # nothing half-written


@requires_proc
def test_video_sink_in_unwritable_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="/proc is not writable"):
        VideoFileSink(UNWRITABLE / "out.mp4")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_video_sink_in_read_only_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OutputError, match="not writable"):
        VideoFileSink(locked / "out.mp4")


# --------------------------------------------------------------------------- mask folder
def test_mask_sink_writes_binary_pngs_at_frame_size_named_by_stem(tmp_path: Path) -> None:
    folder = tmp_path / "nested" / "masks"
    sink = MaskDirSink(folder)
    sink.write(result(0))
    stemmed = result(1, hw=(40, 50))
    stemmed.name = "5_12"  # an image-folder frame keeps its file's stem
    stemmed.mask = np.zeros((10, 12), bool)  # off-size and bool: still 0/255 at frame size
    stemmed.mask[:5] = True
    sink.write(stemmed)
    sink.close()
    assert sorted(p.name for p in folder.iterdir()) == ["000000.png", "5_12.png"]
    first = cv2.imread(str(folder / "000000.png"), cv2.IMREAD_UNCHANGED)
    assert first.shape == FRAME_HW and first.dtype == np.uint8
    assert np.array_equal(first, result(0).mask)
    second = cv2.imread(str(folder / "5_12.png"), cv2.IMREAD_UNCHANGED)
    assert second.shape == (40, 50) and set(np.unique(second)) == {0, 255}
    assert second[:20].all() and not second[20:].any()


def test_mask_sink_refuses_a_file_path(tmp_path: Path) -> None:
    file = tmp_path / "masks"
    file.write_text("x")
    with pytest.raises(OutputError, match="--save-masks .*masks is a file"):
        MaskDirSink(file)
    with pytest.raises(OutputError, match="cannot create the folder"):
        MaskDirSink(file / "sub")


@requires_proc
def test_mask_sink_in_unwritable_places(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="--save-masks /proc/nerve-masks"):
        MaskDirSink(UNWRITABLE / "nerve-masks")
    with pytest.raises(OutputError, match="not writable"):
        MaskDirSink(UNWRITABLE)


# --------------------------------------------------------------------------- crash safety
def test_mp4_is_recorded_as_matroska_and_the_user_is_told(tmp_path: Path) -> None:
    told: list[str] = []
    sink = VideoFileSink(tmp_path / "out.mp4", fps=15, log=told.append)
    assert sink.path == tmp_path / "out.mkv" and sink.requested == tmp_path / "out.mp4"
    assert len(told) == 1 and "out.mkv" in told[0] and "power cut" in told[0]
    for i in range(3):
        sink.write(result(i))
    sink.close()
    assert not (tmp_path / "out.mp4").exists()
    assert int(cv2.VideoCapture(str(sink.path)).get(cv2.CAP_PROP_FOURCC)) != 0


def test_mp4_can_still_be_asked_for_explicitly(tmp_path: Path) -> None:
    told: list[str] = []
    sink = VideoFileSink(tmp_path / "out.mp4", fps=15, crash_safe=False, log=told.append)
    sink.write(result(0))
    sink.close()
    assert sink.path == tmp_path / "out.mp4" and sink.path.stat().st_size > 0 and not told


def test_recording_is_flushed_to_disk_periodically_and_at_close(tmp_path, monkeypatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(sinks.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    monkeypatch.setattr(sinks, "FSYNC_EVERY_S", 0.01)
    sink = VideoFileSink(tmp_path / "out.avi", fps=15)
    sink.write(result(0))
    deadline = 200
    while len(synced) < 2 and deadline:  # the background thread syncs on its own
        deadline -= 1
        threading.Event().wait(0.01)
    assert len(synced) >= 2
    before = len(synced)
    sink.close()
    # One last flush after the trailer (the thread may have synced once more meanwhile) ...
    assert len(synced) >= before + 1
    after = len(synced)
    threading.Event().wait(0.1)
    assert len(synced) == after  # ... and the background thread has stopped
    assert [t.name for t in threading.enumerate() if t.name == "record-fsync"] == []


class BrokenWriter:
    def __init__(self) -> None:
        self.released = 0

    def write(self, image) -> None:
        pass

    def release(self) -> None:
        self.released += 1
        raise cv2.error("disk full")


def test_close_never_raises_and_says_what_failed(tmp_path: Path) -> None:
    told: list[str] = []
    sink = VideoFileSink(tmp_path / "out.avi", fps=15, log=told.append)
    sink.write(result(0))
    broken = BrokenWriter()
    sink._writer.release()
    sink._writer = broken
    sink.close()  # a failing trailer must not cost the run its summary and report
    sink.close()
    assert broken.released == 1
    assert len(told) == 1 and "finishing" in told[0] and "out.avi" in told[0]


def test_mask_files_get_the_users_umask_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        sink = MaskDirSink(tmp_path / "masks")
        sink.write(result(0))
        sink.close()
    finally:
        os.umask(old)
    (png,) = (tmp_path / "masks").glob("*.png")
    assert png.stat().st_mode & 0o777 == 0o644  # readable by the clinic's other tools
