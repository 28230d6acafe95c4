"""edge-run --capture: raw lossless frames at a bounded rate and size, never half-written."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge import fsutil
from edge.errors import OutputError
from edge.io.capture import CaptureTap, CaptureWriter
from edge.io.sources import innermost
from edge.types import SourceInfo, new_frame
from tests.cli_contract import assert_one_error, partial_files, run_tool, terminate_when


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _frame(i: int, dtype=np.uint8, shape=(60, 80)):
    rng = np.random.default_rng(i)
    high = 65535 if dtype == np.uint16 else 255
    return new_frame(rng.integers(0, high, shape, dtype=dtype), i)


def test_rate_limit_keeps_one_frame_per_period(tmp_path):
    clock = Clock()
    writer = CaptureWriter(tmp_path, every_s=1.0, clock=clock)
    saved = []
    for i, t in enumerate([0.0, 0.5, 0.99, 1.0, 1.6, 2.0, 2.1]):
        clock.t = t
        saved.append(writer.offer(_frame(i)))
    assert saved == [True, False, False, True, False, True, False]
    assert len(list(tmp_path.glob("*.png"))) == 3 == writer.summary()["saved"]


def test_frames_are_lossless_full_size_any_depth(tmp_path):
    writer = CaptureWriter(tmp_path, every_s=0)
    frames = [_frame(0), _frame(1, np.uint16, (70, 90)), _frame(2, shape=(50, 40, 3))]
    for f in frames:
        assert writer.offer(f)
    paths = sorted(tmp_path.glob("*.png"))  # names sort in capture order
    for f, p in zip(frames, paths, strict=True):
        assert p.name.endswith(f"_f{f.index:06d}.png")
        assert np.array_equal(cv2.imread(str(p), cv2.IMREAD_UNCHANGED), f.image)


def test_disk_cap_stops_capture_with_one_warning(tmp_path):
    (tmp_path / "old.png").write_bytes(b"x" * 30_000)  # earlier runs count toward the cap
    warnings = []
    writer = CaptureWriter(tmp_path, every_s=0, max_mb=0.05, warn=warnings.append)
    results = [writer.offer(_frame(i)) for i in range(10)]  # ~4.8 kB each, incompressible
    assert results[:4] == [True] * 4 and not any(results[5:])
    assert len(warnings) == 1 and "--capture-max-mb" in warnings[0]
    assert writer.summary()["cap_reached"]
    total = sum(p.stat().st_size for p in tmp_path.glob("*.png"))
    assert total <= 50_000


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    def interrupted(*_):
        raise KeyboardInterrupt  # what SIGTERM raises through edge.signals

    monkeypatch.setattr(fsutil.os, "replace", interrupted)
    writer = CaptureWriter(tmp_path, every_s=0)
    with pytest.raises(KeyboardInterrupt):
        writer.offer(_frame(0))
    assert list(tmp_path.iterdir()) == []


def test_stale_temp_files_are_removed(tmp_path):
    stale = tmp_path / ".20261206_f000001.abc.tmp.png"
    stale.write_bytes(b"half a png")
    CaptureWriter(tmp_path)
    assert not stale.exists()


def test_tap_passes_frames_info_and_close_through(tmp_path):
    class Source:
        info = SourceInfo(label="fake", live=True, fps=25.0)
        closed = False

        def __init__(self):
            self.frames = [_frame(0), _frame(1), None]

        def read(self):
            return self.frames.pop(0)

        def close(self):
            self.closed = True

    source = Source()
    tap = CaptureTap(source, CaptureWriter(tmp_path, every_s=0))
    assert tap.info is source.info and innermost(tap) is source
    assert tap.read().index == 0 and tap.read().index == 1 and tap.read() is None
    assert tap.writer.saved == 2
    tap.close()
    assert source.closed


def test_bad_values_are_refused(tmp_path):
    with pytest.raises(OutputError, match="--capture-max-mb"):
        CaptureWriter(tmp_path, max_mb=0)


def test_cli_capture_into_a_file_is_one_line_exit_2(tmp_path):
    target = tmp_path / "file.png"
    target.write_bytes(b"")
    proc = run_tool("edge.cli", ["--source", "phantom", "--headless", "--max-frames", "3",
                                 "--capture", str(target)])
    assert_one_error(proc, "edge-run", "--capture", str(target))


def test_sigterm_mid_capture_leaves_whole_frames_only(tmp_path):
    out = tmp_path / "frames"
    rc, log = terminate_when(
        "edge.cli", ["--source", "phantom", "--headless", "--capture", str(out),
                     "--capture-every", "0"],
        ready=lambda: out.is_dir() and len(list(out.glob("*.png"))) >= 30,
        log=tmp_path / "log.txt")
    assert rc == 130, log
    assert "captured" in log, log
    assert partial_files(out) == [], log
    frames = sorted(out.glob("*.png"))
    assert len(frames) >= 30
    for p in frames:
        image = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        assert image is not None and image.shape[:2] == (420, 580), p
