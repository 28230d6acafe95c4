"""Frame sources (edge/io/: camera.py, files.py, picamera.py, phantom.py and the factory,
sources.py): every kind, every bad input, bad frames, lost and frozen live sources, real-time
pacing (pacing.py). SourceInfo and the backoff helper: test_source_info.py, test_backoff.py."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge import log
from edge.errors import BadFrame, SourceError, SourceLost
from edge.io import sources
from edge.io.camera import CameraSource
from edge.io.files import ImageDirSource, VideoFileSource, list_images
from edge.io.latest import LatestFrame
from edge.io.pacing import Paced
from edge.io.phantom import PhantomSource, phantom_pair
from edge.io.picamera import PiCameraSource
from edge.io.sources import SourceConfig, open_source, source_from_uri
from edge.types import SourceInfo

REPO = Path(__file__).resolve().parents[2]
SMALL_VIDEO_FRAMES = 12  # see conftest.small_video
FROZEN_FOR_S = 6.0  # a frozen fake stream thaws after this long (the budget under test: 1 s)


def level_index(image: np.ndarray) -> int:
    """Frame index encoded by conftest.small_video (flat gray at 20 + 20 * index)."""
    return int(round((float(image.mean()) - 20) / 20))


def read_all(source, limit: int = 1000) -> list:
    frames = []
    while len(frames) < limit and (frame := source.read()) is not None:
        frames.append(frame)
    return frames


def read_until_lost(source, limit: int = 1000) -> list:
    """Frames of a live source until it raises SourceLost (which it must)."""
    frames = []
    with pytest.raises(SourceLost, match="lost: no frame for"):
        while len(frames) < limit:
            frames.append(source.read())
    return frames


class FakeCapture:
    """A cv2.VideoCapture stand-in: delivers ``frames`` frames, then read() fails."""

    def __init__(self, frames: int = 3, opened: bool = True, size=(32, 24)) -> None:
        self.remaining = frames
        self.opened = opened
        self.size = size
        self.props: dict[int, float] = {}
        self.released = False

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.opened

    def read(self):
        if not self.opened or self.remaining <= 0:
            return False, None
        self.remaining -= 1
        width, height = self.size
        return True, np.full((height, width, 3), 7, np.uint8)

    def set(self, prop: int, value: float) -> bool:
        self.props[prop] = value
        return True

    def get(self, prop: int) -> float:
        actual = {cv2.CAP_PROP_FRAME_WIDTH: self.size[0], cv2.CAP_PROP_FRAME_HEIGHT: self.size[1]}
        return float(actual.get(prop, self.props.get(prop, 0.0)))

    def release(self) -> None:
        self.released = True


class CaptureFactory:
    """Hands out the given captures in order (the last one again when they run out)."""

    def __init__(self, *captures: FakeCapture) -> None:
        self.captures = list(captures)
        self.calls: list[tuple] = []

    def __call__(self, target, api):
        self.calls.append((target, api))
        return self.captures[min(len(self.calls), len(self.captures)) - 1]


# --------------------------------------------------------------------------- video files
def test_video_file_reads_every_frame_in_order(small_video: Path) -> None:
    source = VideoFileSource(small_video)
    frames = read_all(source)
    source.close()
    assert source.info.live is False
    assert len(frames) == SMALL_VIDEO_FRAMES
    assert [level_index(f.image) for f in frames] == list(range(SMALL_VIDEO_FRAMES))
    assert frames[0].image.shape == (48, 64, 3)  # read back as BGR
    assert [f.index for f in frames[:2]] == [0, 1]
    assert frames[3].name == "000003"


def test_video_file_loop_restarts_and_keeps_counting(small_video: Path) -> None:
    source = VideoFileSource(small_video, loop=True)
    frames = read_all(source, limit=SMALL_VIDEO_FRAMES * 2 + 3)
    source.close()
    assert len(frames) == SMALL_VIDEO_FRAMES * 2 + 3
    assert level_index(frames[SMALL_VIDEO_FRAMES].image) == 0
    assert frames[-1].index == SMALL_VIDEO_FRAMES * 2 + 2


def test_missing_video_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not found: .*nope.mp4"):
        VideoFileSource(tmp_path / "nope.mp4")


def test_folder_given_as_video_points_to_images(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="--images"):
        VideoFileSource(tmp_path)


def test_undecodable_video_fails_at_open(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 50)
    with pytest.raises(SourceError, match="cannot read video .*bad.mp4"):
        VideoFileSource(bad)


def test_a_cut_mp4_gives_only_the_kits_line_not_ffmpegs(tmp_path: Path) -> None:
    """FFmpeg's "moov atom not found" (its own stderr line) must not come before the kit's
    error: a fresh edge-run (FFmpeg's logging is set when its backend starts)."""
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(10):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[:40])  # the header box only: no moov atom
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    out = subprocess.run([sys.executable, "-m", "edge.cli", "--video", str(cut), "--headless",
                          "--quiet"], capture_output=True, text=True, timeout=120,
                         env={**env, "PYTHONPATH": str(REPO)}, cwd=REPO)
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(err) == 1, out.stderr
    assert err[0].startswith("edge-run: error: cannot read video") and "moov" not in err[0]


def test_stream_url_is_live_and_unopenable_stream_is_an_error() -> None:
    source = VideoFileSource("rtsp://cam.local/live", capture_factory=CaptureFactory(FakeCapture()))
    assert source.info.live is True
    assert source.read() is not None
    source.close()
    with pytest.raises(SourceError, match="cannot open stream rtsp://cam.local/live"):
        VideoFileSource(
            "rtsp://cam.local/live", capture_factory=CaptureFactory(FakeCapture(0, opened=False))
        )


# --------------------------------------------------------------------------- cameras
def test_missing_camera_index_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="cannot open camera 9: no such device.*v4l2-ctl"):
        CameraSource(9)


def test_missing_camera_path_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="cannot open camera /dev/video77: no such device"):
        CameraSource("/dev/video77")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="names /dev/video* (Linux)")
@pytest.mark.parametrize("device", [0, "/dev/video0"])
def test_missing_camera_says_what_was_tried_and_real_fixes(device) -> None:
    """Not "try --camera 0" to someone who gave --camera 0: the device tried, the devices
    this machine has, and fixes that can work."""
    with pytest.raises(SourceError) as info:
        CameraSource(device, capture_factory=lambda *a: FakeCapture(frames=0, opened=False))
    text = str(info.value)
    assert "tried /dev/video0" in text and "/dev/video* here: " in text
    for fix in ("cable", "ls /dev/video*", "v4l2-ctl --list-devices", "another index",
                "--video", "--source phantom"):
        assert fix in text
    assert "--camera 0" not in text and "\n" not in text


def test_camera_requests_size_and_reports_what_it_got() -> None:
    capture = FakeCapture(frames=2, size=(640, 480))
    factory = CaptureFactory(capture)
    camera = CameraSource("0", width=1280, height=720, fps=60, retry_s=0, capture_factory=factory)
    assert factory.calls == [(0, cv2.CAP_ANY)]
    assert capture.props[cv2.CAP_PROP_FRAME_WIDTH] == 1280
    assert capture.props[cv2.CAP_PROP_FRAME_HEIGHT] == 720
    assert capture.props[cv2.CAP_PROP_FPS] == 60
    assert camera.actual_size == (640, 480)
    assert camera.info == SourceInfo("camera 0", live=True, fps=60.0)  # what the device gave
    assert [f.index for f in read_until_lost(camera)] == [0, 1]
    camera.close()
    assert capture.released


def test_camera_path_uses_v4l2_on_linux() -> None:
    factory = CaptureFactory(FakeCapture())
    CameraSource("/dev/video2", capture_factory=factory).close()
    expected = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
    assert factory.calls == [("/dev/video2", expected)]


def warning_lines(capsys, prog: str = "edge-test") -> list[str]:
    """The module loggers' warnings, as the one channel (edge.log) prints them on stderr."""
    prefix = f"{prog}: warning: "
    return [line[len(prefix):] for line in capsys.readouterr().err.splitlines()
            if line.startswith(prefix)]


def test_video_standing_in_for_a_camera_reconnects_after_it_stops(small_video: Path, capsys):
    def reopen_video(target, api):
        return cv2.VideoCapture(str(small_video))

    log.configure("edge-test")
    camera = CameraSource(0, retry_s=5.0, capture_factory=reopen_video)
    frames = read_all(camera, limit=SMALL_VIDEO_FRAMES + 2)
    camera.close()
    assert len(frames) == SMALL_VIDEO_FRAMES + 2
    # After the "camera" stopped, it was reopened and delivered from its start again.
    assert level_index(frames[SMALL_VIDEO_FRAMES].image) == 0
    assert any("reopening" in line for line in warning_lines(capsys))


def test_stalled_camera_retries_with_backoff_then_is_lost(capsys) -> None:
    factory = CaptureFactory(FakeCapture(frames=3), FakeCapture(frames=0, opened=False))
    camera = CameraSource(0, retry_s=0.5, capture_factory=factory)
    log.configure("edge-test")
    start = time.monotonic()
    frames = read_until_lost(camera)
    elapsed = time.monotonic() - start
    camera.close()
    assert len(frames) == 3
    retries = [line for line in warning_lines(capsys) if "reopening" in line]
    assert len(retries) >= 2 and len(factory.calls) == 1 + len(retries)
    waits = [float(line.split("reopening in ")[1].split(" s")[0]) for line in retries]
    assert waits[1] > waits[0]  # exponential backoff
    assert 0.4 <= elapsed < 5.0


def test_zero_retry_budget_is_lost_at_once() -> None:
    camera = CameraSource(0, retry_s=0, capture_factory=CaptureFactory(FakeCapture(frames=1)))
    assert camera.read() is not None
    with pytest.raises(SourceLost, match="source camera 0 lost"):
        camera.read()


class FrozenCapture(FakeCapture):
    """A stream that freezes: after ``frames`` frames, read() blocks (like OpenCV's FFmpeg
    reader on a dead RTSP connection, which waits ~30 s) until ``thaw`` is set."""

    def __init__(self, frames: int = 3) -> None:
        super().__init__(frames)
        self.thaw = threading.Event()

    def read(self):
        if self.remaining <= 0:
            self.thaw.wait()
            return False, None
        return super().read()


def test_frozen_stream_is_lost_within_the_retry_budget(monkeypatch) -> None:
    frozen = FrozenCapture(frames=3)

    def fake_stream(cfg: SourceConfig) -> VideoFileSource:
        return VideoFileSource(cfg.target, retry_s=cfg.retry_s,
                               capture_factory=CaptureFactory(frozen))

    monkeypatch.setitem(sources._OPENERS, "video", fake_stream)
    # Without the watchdog read() would block until the stream thaws, long after the budget.
    threading.Timer(FROZEN_FOR_S, frozen.thaw.set).start()
    source = open_source(SourceConfig(kind="video", target="rtsp://cam.local/live", retry_s=1.0))
    assert isinstance(source, LatestFrame)  # the watchdog comes with the latest-frame wrapper
    try:
        start = time.monotonic()
        frames = read_until_lost(source)
        elapsed = time.monotonic() - start
    finally:
        frozen.thaw.set()
        source.close()
    assert frames[-1].index == 2  # the newest frame before the freeze
    assert elapsed < 1.0 + 2.0  # the 1 s budget plus scheduling slack, not OpenCV's ~30 s


# --------------------------------------------------------------------------- image folders
def write_image_folder(folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    cv2.imwrite(str(folder / "b_2.png"), np.full((20, 30), 100, np.uint8))
    cv2.imwrite(str(folder / "b_10.png"), np.full((20, 30), 40000, np.uint16))
    cv2.imwrite(str(folder / "a.tif"), np.full((20, 30, 3), 50, np.uint8))
    cv2.imwrite(str(folder / "C.PNG"), np.full((20, 30), 9, np.uint8))
    cv2.imwrite(str(folder / "a_mask.png"), np.zeros((20, 30), np.uint8))  # a Kaggle label
    (folder / "notes.txt").write_text("not an image")


def test_image_folder_natural_order_bit_depths_and_no_labels(tmp_path: Path) -> None:
    write_image_folder(tmp_path)
    source = open_source(SourceConfig(kind="images", target=str(tmp_path)))
    assert not isinstance(source, LatestFrame) and source.info.live is False
    frames = read_all(source)
    source.close()
    assert [f.name for f in frames] == ["a", "b_2", "b_10", "C"]
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert frames[0].image.shape == (20, 30, 3)
    assert frames[1].image.dtype == np.uint8
    assert frames[2].image.dtype == np.uint16 and frames[2].image.max() == 40000


def test_image_folder_loop(tmp_path: Path) -> None:
    write_image_folder(tmp_path)
    frames = read_all(ImageDirSource(tmp_path, loop=True), limit=9)
    assert [f.name for f in frames][4:] == ["a", "b_2", "b_10", "C", "a"]


def test_single_image_file_is_a_one_frame_source(tmp_path: Path) -> None:
    write_image_folder(tmp_path)
    assert [f.name for f in read_all(ImageDirSource(tmp_path / "a.tif"))] == ["a"]


def test_empty_and_missing_folders_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "only_mask.png").write_bytes(b"")
    (tmp_path / "x_mask.png").write_bytes(b"")
    with pytest.raises(SourceError, match=f"no images in folder {tmp_path}"):
        ImageDirSource(tmp_path)
    with pytest.raises(SourceError, match="image folder not found: .*missing"):
        open_source(SourceConfig(kind="images", target=str(tmp_path / "missing")))


def test_a_corrupt_image_is_a_bad_frame_and_the_folder_goes_on(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "1.png"), np.full((20, 30), 10, np.uint8))
    good = cv2.imencode(".png", np.full((20, 30), 30, np.uint8))[1].tobytes()
    (tmp_path / "2.png").write_bytes(good[: len(good) // 2])  # truncated, as by a power cut
    cv2.imwrite(str(tmp_path / "3.png"), np.full((20, 30), 30, np.uint8))
    source = ImageDirSource(tmp_path)
    assert source.read().name == "1"
    with pytest.raises(BadFrame, match="cannot read image .*2.png"):
        source.read()
    third = source.read()
    assert third.name == "3" and third.index == 2  # the broken file kept its number
    assert source.read() is None


def test_a_looping_folder_of_only_corrupt_images_ends(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    source = ImageDirSource(tmp_path, loop=True)
    with pytest.raises(BadFrame):
        source.read()
    assert source.read() is None  # not an endless stream of bad frames


def test_an_unlistable_folder_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    # Tests run as root, so chmod cannot make a folder unreadable: fail the listing instead.
    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", refuse)
    with pytest.raises(SourceError, match=f"cannot list image folder {tmp_path} "
                                          r"\(Permission denied\)"):
        ImageDirSource(tmp_path)


def corrupt_frame(video: Path, out: Path, index: int) -> Path:
    """A copy of an MJPG .avi with the JPEG data of frame ``index`` overwritten."""
    data = bytearray(video.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    start = starts[index]
    data[start : start + 200] = bytes(200)
    out.write_bytes(bytes(data))
    return out


def test_an_undecodable_video_frame_is_a_bad_frame_and_the_video_goes_on(
        small_video: Path, tmp_path: Path) -> None:
    source = VideoFileSource(corrupt_frame(small_video, tmp_path / "bad5.avi", 5))
    levels, bad = [], []
    while True:
        try:
            frame = source.read()
        except BadFrame as e:
            bad.append(str(e))
            continue
        if frame is None:
            break
        levels.append((frame.index, level_index(frame.image)))
    source.close()
    assert len(bad) == 1 and "frame 5 cannot be decoded" in bad[0]
    assert levels == [(i, i) for i in range(SMALL_VIDEO_FRAMES) if i != 5]


def test_kaggle_folder_yields_images_only(shared_data: Path) -> None:
    folder = shared_data / "kaggle-nerve" / "train"
    files = list_images(folder)
    labels = list(folder.glob("*_mask.png"))
    assert len(files) == len(labels) > 0
    assert not any(p.stem.endswith("_mask") for p in files)
    frame = ImageDirSource(folder).read()
    assert frame is not None and frame.name == files[0].stem and frame.image.ndim == 2


# --------------------------------------------------------------------------- Pi camera
class FakePicamera2:
    """Stand-in for picamera2.Picamera2 at its interface: YUV420 arrays of (h * 3/2, stride)."""

    instances: list[FakePicamera2] = []
    STRIDE_PAD = 16  # libcamera pads rows to an aligned stride

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.config: dict | None = None
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main: dict, controls: dict | None = None) -> dict:
        return {"main": main, "controls": controls or {}}

    def configure(self, config: dict) -> None:
        self.config = config

    def start(self) -> None:
        self.calls.append("start")

    def capture_array(self, stream: str = "main") -> np.ndarray:
        width, height = self.config["main"]["size"]
        yuv = np.full((height * 3 // 2, width + self.STRIDE_PAD), 128, np.uint8)
        yuv[:height, :width] = np.arange(width, dtype=np.uint8)[None, :]
        return yuv

    def stop(self) -> None:
        self.calls.append("stop")

    def close(self) -> None:
        self.calls.append("close")


def test_picamera_delivers_the_y_plane(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    source = open_source(SourceConfig(kind="picamera", width=64, height=48, fps=30, latest=False))
    cam = FakePicamera2.instances[-1]
    assert cam.config["main"] == {"size": (64, 48), "format": "YUV420"}
    assert cam.config["controls"] == {"FrameRate": 30.0}
    frame = source.read()
    assert source.info == SourceInfo("the Pi camera", live=True, fps=30)
    assert frame.image.shape == (48, 64) and frame.image.dtype == np.uint8
    assert np.array_equal(frame.image[5], np.arange(64, dtype=np.uint8))
    source.close()
    assert cam.calls == ["start", "stop", "close"]


class DroppingPicamera2(FakePicamera2):
    """A Pi camera that falls off the bus after its first frame."""

    def capture_array(self, stream: str = "main") -> np.ndarray:
        if "captured" in self.calls:
            raise RuntimeError("Camera frontend has timed out!")
        self.calls.append("captured")
        return super().capture_array(stream)


def test_picamera_that_stops_is_lost_after_the_retry_budget(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2",
                        types.SimpleNamespace(Picamera2=DroppingPicamera2))
    source = PiCameraSource(64, 48, retry_s=0.3)
    assert source.read() is not None
    with pytest.raises(SourceLost, match="source the Pi camera lost: no frame for 0.3 s"):
        source.read()
    source.close()


def test_picamera_missing_module_explains_the_os_package(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import now raises ImportError
    with pytest.raises(SourceError, match="python3-picamera2.*system-site-packages"):
        PiCameraSource()


NUMPY_ABI_BREAK = ("numpy.dtype size changed, may indicate binary incompatibility. Expected 96 "
                   "from C header, got 88 from PyObject")


def fake_picamera2_raising(folder: Path, error: str) -> Path:
    """A picamera2 package whose import raises like apt's on a venv with numpy 2 (simplejpeg,
    built against Debian's numpy 1.24, fails in its import)."""
    package = folder / "picamera2"
    package.mkdir()
    (package / "__init__.py").write_text(f"raise {error}\n")
    return folder


@pytest.mark.parametrize("error", [f"ValueError({NUMPY_ABI_BREAK!r})",
                                   "ImportError('numpy.core.multiarray failed to import')"])
def test_picamera_built_for_another_numpy_is_one_line_naming_the_cause(tmp_path, monkeypatch,
                                                                      capsys, error) -> None:
    from edge.cli import main

    monkeypatch.syspath_prepend(str(fake_picamera2_raising(tmp_path, error)))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    code = main(["--picamera", "--headless", "--quiet", "--max-frames", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("edge-run: error: --picamera: picamera2 fails to import (numpy")
    assert "numpy in this venv is not the one python3-picamera2 was built for" in err[0]
    assert "docs/deploy-pi.md" in err[0] and "Traceback" not in err[0]


# --------------------------------------------------------------------------- phantom
def test_phantom_is_deterministic_gray_and_sized() -> None:
    a, b = PhantomSource(seed=3), PhantomSource(seed=3)
    fa, fb = a.read(), b.read()
    assert fa.image.shape == (420, 580) and fa.image.dtype == np.uint8
    assert np.array_equal(fa.image, fb.image)
    assert np.array_equal(a.frame(77), b.frame(77))
    assert not np.array_equal(a.frame(77), PhantomSource(seed=4).frame(77))
    assert fa.name == "000000" and a.read().index == 1
    assert a.info.live is False


def test_phantom_truth_is_a_dark_moving_oval() -> None:
    frame, mask = phantom_pair(10, width=290, height=210, seed=1)
    assert frame.shape == mask.shape == (210, 290)
    assert set(np.unique(mask)) == {0, 255}
    inside = mask > 0
    ring = cv2.dilate(mask, np.ones((25, 25), np.uint8)) > 0
    ring &= ~inside
    assert frame[inside].mean() < 0.8 * frame[ring].mean()  # hypoechoic nerve
    _, later = phantom_pair(80, width=290, height=210, seed=1)
    assert not np.array_equal(mask, later)
    assert np.array_equal(PhantomSource(290, 210, seed=1).truth(10), mask)


def test_phantom_read_is_cheap() -> None:
    source = PhantomSource()
    source.read()
    start = time.perf_counter()
    for _ in range(200):
        source.read()
    per_read_ms = (time.perf_counter() - start) / 200 * 1e3
    assert per_read_ms < 3.0  # generous: measured ~0.03 ms; the runner budget is 6.7 ms/frame


def test_phantom_config_size_and_too_small() -> None:
    source = open_source(SourceConfig(kind="phantom", width=128, height=96))
    assert isinstance(source, PhantomSource) and source.read().image.shape == (96, 128)
    with pytest.raises(SourceError, match="too small"):
        PhantomSource(32, 32)


# --------------------------------------------------------------------------- factory
def test_live_sources_get_the_latest_frame_wrapper(small_video: Path) -> None:
    source = open_source(SourceConfig(kind="video", target=str(small_video), latest=True))
    assert isinstance(source, LatestFrame)
    assert source.read() is not None
    source.close()
    assert not isinstance(open_source(SourceConfig(kind="phantom")), LatestFrame)


def test_cameras_are_wrapped_by_default_and_not_when_asked(monkeypatch) -> None:
    def fake_camera(cfg: SourceConfig) -> CameraSource:
        return CameraSource(cfg.target, retry_s=0, capture_factory=CaptureFactory(FakeCapture(3)))

    monkeypatch.setitem(sources._OPENERS, "camera", fake_camera)
    wrapped = open_source(SourceConfig(kind="camera", target=0))
    assert isinstance(wrapped, LatestFrame) and wrapped.info.live is True
    assert wrapped.read() is not None
    wrapped.close()
    plain = open_source(SourceConfig(kind="camera", target=0, latest=False))
    assert isinstance(plain, CameraSource)
    assert len(read_until_lost(plain)) == 3
    plain.close()


def test_unknown_kind_lists_the_kinds() -> None:
    with pytest.raises(SourceError, match="unknown source kind 'webcam'.*camera.*phantom"):
        open_source(SourceConfig(kind="webcam"))


def test_source_from_uri(tmp_path: Path) -> None:
    cases = {
        "phantom": ("phantom", None),
        "picamera": ("picamera", None),
        "0": ("camera", 0),
        "/dev/video2": ("camera", "/dev/video2"),
        "rtsp://10.0.0.5/stream": ("video", "rtsp://10.0.0.5/stream"),
        str(tmp_path): ("images", str(tmp_path)),
        "clip.mp4": ("video", "clip.mp4"),
    }
    for text, (kind, target) in cases.items():
        cfg = source_from_uri(text)
        assert (cfg.kind, cfg.target) == (kind, target), text


# --------------------------------------------------------------------------- real-time pacing
class FakeClock:
    """time.monotonic / time.sleep stand-ins: sleeping advances the clock."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_paced_reads_are_due_one_period_apart_without_catch_up_bursts() -> None:
    clock = FakeClock()
    paced = Paced(PhantomSource(128, 96), fps=10.0, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(4):
        paced.read()
        times.append(clock.now)
        clock.now += 0.02  # the loop's own work per frame
    assert times == pytest.approx([100.0, 100.1, 100.2, 100.3])
    clock.now += 0.5  # the loop stalls for 5 periods ...
    paced.read()
    late = clock.now
    paced.read()
    assert clock.now == pytest.approx(late + 0.1)  # ... and then goes on at 10 fps, no burst


def test_realtime_video_plays_at_its_own_frame_rate(small_video: Path) -> None:
    source = open_source(SourceConfig(kind="video", target=str(small_video), realtime=True))
    assert source.info.fps == pytest.approx(10.0)  # the clip's rate, seen through the wrapper
    assert source.info.paced and source.info.label == str(small_video)
    start = time.monotonic()
    frames = read_all(source)
    elapsed = time.monotonic() - start
    source.close()
    assert len(frames) == SMALL_VIDEO_FRAMES
    assert elapsed >= (SMALL_VIDEO_FRAMES - 1) / 10.0 - 0.05  # not served as fast as decoded


def test_fps_paces_a_folder_and_realtime_without_a_rate_is_refused(tmp_path: Path) -> None:
    write_image_folder(tmp_path)
    paced = open_source(SourceConfig(kind="images", target=str(tmp_path), fps=20.0))
    start = time.monotonic()
    assert len(read_all(paced)) == 4
    assert time.monotonic() - start >= 3 / 20.0 - 0.02
    with pytest.raises(SourceError, match="--realtime: images .* no frame rate.*--fps"):
        open_source(SourceConfig(kind="images", target=str(tmp_path), realtime=True))
    unpaced = open_source(SourceConfig(kind="images", target=str(tmp_path)))
    assert not isinstance(unpaced, Paced)
