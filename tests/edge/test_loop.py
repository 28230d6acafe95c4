"""The whole loop, headless, through main([...]): outputs checked on disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import edge.loop
import edge.runreport
from edge.cli import main
from edge.clikit import Terminated
from edge.io import sources
from edge.io.camera import CameraSource
from edge.io.phantom import phantom_pair
from edge.io.sources import SourceConfig
from edge.loop import run
from edge.model.metadata import sha256_file
from edge.model.store import default_model_path
from edge.runconfig import RunConfig
from edge.types import Frame, SourceInfo

PHANTOM_HW = (420, 580)
MODELS = Path(edge.loop.__file__).parent / "models"
# The phantom-trained fixture outlines the phantom's oval; the shipped model is trained on real
# ultrasound and is not expected to, so accuracy-on-phantom checks pin the fixture.
FIXTURE = MODELS / "nerve_fixture_int8.tflite"
FIXTURE_ONNX = MODELS / "nerve_fixture.onnx"
REPORT_KEYS = {"frames", "wall_s", "fps", "stages", "non_model_share", "stop_reason",
               "model_path", "model_sha256", "backend", "threads", "source", "config"}


def video_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return 2.0 * (a & b).sum() / max(a.sum() + b.sum(), 1)


def test_phantom_record_masks_report(tmp_path, capsys):
    out = tmp_path / "out.mp4"
    masks = tmp_path / "masks"
    report = tmp_path / "run.json"
    code = main(["--source", "phantom", "--headless", "--max-frames", "5", "--record", str(out),
                 "--save-masks", str(masks), "--report", str(report), "--threads", "1",
                 "--model", str(FIXTURE)])
    assert code == 0
    stdout = capsys.readouterr().out
    assert "edge-run: model" in stdout and "5 frames in" in stdout and "p50" in stdout
    assert video_frames(out.with_suffix(".mkv")) == 5  # .mp4 is recorded crash-safe as .mkv
    names = sorted(p.name for p in masks.iterdir())
    assert names == [f"{i:06d}.png" for i in range(5)]
    for i, name in enumerate(names):
        mask = cv2.imread(str(masks / name), cv2.IMREAD_UNCHANGED)
        assert mask.shape == PHANTOM_HW and set(np.unique(mask)) <= {0, 255}
        assert dice(mask, phantom_pair(i)[1]) > 0.8  # the fixture outlines the phantom nerve
    data = json.loads(report.read_text())
    assert REPORT_KEYS <= set(data)
    assert data["frames"] == 5 and data["stop_reason"] == "max frames"
    assert data["model_sha256"] == sha256_file(FIXTURE)
    assert data["threads"] == 1 and data["backend"].startswith("tflite(")
    assert data["source"]["kind"] == "phantom"
    assert {"capture", "preprocess", "inference", "postprocess", "render", "total"} <= set(
        data["stages"])
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave no temp files


def test_video_with_onnx_backend_until_the_end(tmp_path, small_video):
    report = tmp_path / "r.json"
    onnx = default_model_path("onnx")
    assert main(["--video", str(small_video), "--headless", "--report", str(report),
                 "--model", str(onnx), "--quiet"]) == 0
    data = json.loads(report.read_text())
    assert data["frames"] == 12 and data["stop_reason"] == "source ended"
    assert data["backend"] == "onnx(CPUExecutionProvider)"


def test_image_folder_masks_named_after_stems(tmp_path):
    src = tmp_path / "scans"
    src.mkdir()
    frame, _ = phantom_pair(3)
    cv2.imwrite(str(src / "b_8bit.png"), frame)
    cv2.imwrite(str(src / "a_16bit.png"), frame.astype(np.uint16) * 257)
    cv2.imwrite(str(src / "c_small.png"), cv2.resize(frame, (290, 210)))
    out = tmp_path / "masks"
    report = tmp_path / "r.json"
    assert main(["--images", str(src), "--headless", "--save-masks", str(out), "--smooth", "0.5",
                 "--report", str(report), "--quiet", "--model", str(FIXTURE)]) == 0
    got = {p.name: cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in out.iterdir()}
    assert sorted(got) == ["a_16bit.png", "b_8bit.png", "c_small.png"]
    assert got["c_small.png"].shape == (210, 290) and got["b_8bit.png"].shape == PHANTOM_HW
    assert dice(got["a_16bit.png"], got["b_8bit.png"]) > 0.95  # 16-bit reads like 8-bit
    assert json.loads(report.read_text())["config"]["smooth"] == 0.0  # off for folders


def test_roi_masks_stay_inside_the_roi(tmp_path):
    out = tmp_path / "masks"
    assert main(["--headless", "--max-frames", "2", "--roi", "100,50,400,300",
                 "--save-masks", str(out), "--quiet", "--model", str(FIXTURE)]) == 0
    for png in out.iterdir():
        mask = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        assert mask.shape == PHANTOM_HW
        assert not mask[:50].any() and not mask[350:].any()
        assert not mask[:, :100].any() and not mask[:, 500:].any()


class InterruptingSource:
    """Phantom-like frames, then ``stop`` (Ctrl-C by default) on the third read."""

    info = SourceInfo("interrupting")

    def __init__(self, stop: type[BaseException] = KeyboardInterrupt):
        self.reads = 0
        self.stop = stop

    def read(self) -> Frame | None:
        self.reads += 1
        if self.reads == 3:
            raise self.stop()
        image, _ = phantom_pair(self.reads)
        return Frame(image=image, index=self.reads - 1, name=f"{self.reads - 1:06d}",
                     timestamp=0.0)

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("stop, reason", [(KeyboardInterrupt, "interrupted (Ctrl-C)"),
                                          (Terminated, "terminated (SIGTERM)")])
def test_ctrl_c_and_sigterm_close_outputs_write_the_report_then_raise(
        tmp_path, monkeypatch, stop, reason):
    fake = InterruptingSource(stop)
    monkeypatch.setattr(edge.loop, "open_source", lambda cfg, watched=False: fake)
    out, report = tmp_path / "out.avi", tmp_path / "run.json"
    with pytest.raises(stop):
        run(RunConfig(headless=True, record=str(out), report=str(report), quiet=True))
    data = json.loads(report.read_text())
    assert data["stop_reason"] == reason and data["frames"] == 2
    assert video_frames(out) == 2 and fake.closed


def test_run_config_rejects_bad_values():
    from edge.errors import UserInputError

    for kwargs in ({"smooth": 1.5}, {"alpha": 2.0}, {"threads": 0}, {"max_frames": 0},
                   {"threshold": 1.0}, {"min_area": -3}):
        with pytest.raises(UserInputError):
            RunConfig(**kwargs)
    assert RunConfig().source == SourceConfig()


def test_default_model_prefers_the_shipped_model(tmp_path):
    from edge.errors import ModelError

    with pytest.raises(ModelError, match="--model"):
        default_model_path(models_dir=tmp_path)
    for name in ("nerve_fixture_int8.tflite", "nerve_fixture.onnx"):
        (tmp_path / name).write_bytes(b"x")
    assert default_model_path(models_dir=tmp_path).name == "nerve_fixture_int8.tflite"
    (tmp_path / "nerve_default_int8.tflite").write_bytes(b"x")
    assert default_model_path(models_dir=tmp_path).name == "nerve_default_int8.tflite"
    assert default_model_path("onnx", models_dir=tmp_path).name == "nerve_fixture.onnx"


class StopAfter:
    """A sink that asks to stop after ``n`` frames (like q in the window)."""

    needs_overlay = True

    def __init__(self, n: int):
        self.n, self.results = n, []

    def write(self, result) -> None:
        self.results.append(result)

    def should_stop(self) -> bool:
        return len(self.results) >= self.n

    def close(self) -> None:
        self.closed = True


def test_a_sink_can_stop_the_run_and_gets_overlays(monkeypatch):
    sink = StopAfter(3)
    monkeypatch.setattr(edge.loop, "open_sinks", lambda cfg, stack, fps, model=None, **kw: [sink])
    summary = run(RunConfig(model=str(FIXTURE), headless=True, quiet=True, smooth=0.5))
    assert summary["stop_reason"] == "stopped by output" and summary["frames"] == 3
    first = sink.results[0]
    assert first.overlay.shape == PHANTOM_HW + (3,) and first.frame.shape == PHANTOM_HW + (3,)
    assert first.detected and first.area_px == int((first.mask > 0).sum())
    assert [r.name for r in sink.results] == ["000000", "000001", "000002"]


def write_pngs(folder: Path, count: int, corrupt: int | None = None) -> list[str]:
    """``count`` phantom frames as PNGs named 00..; the ``corrupt`` one truncated."""
    folder.mkdir()
    stems = [f"{i:02d}" for i in range(count)]
    for i, stem in enumerate(stems):
        data = cv2.imencode(".png", phantom_pair(i, 128, 96)[0])[1].tobytes()
        (folder / f"{stem}.png").write_bytes(data[: len(data) // 3] if i == corrupt else data)
    return stems


def test_a_corrupt_png_in_a_folder_is_skipped_and_counted(tmp_path, capsys):
    stems = write_pngs(tmp_path / "scans", 30, corrupt=15)
    masks, report = tmp_path / "masks", tmp_path / "run.json"
    code = main(["--images", str(tmp_path / "scans"), "--headless", "--model",
                 str(FIXTURE), "--save-masks", str(masks), "--report", str(report)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "edge-run: stopped: source ended (1 bad frame(s) skipped)" in out
    assert sorted(p.stem for p in masks.iterdir()) == [s for s in stems if s != "15"]
    data = json.loads(report.read_text())
    assert data["bad_frames"] == 1 and data["frames"] == 29
    assert data["stop_reason"] == "source ended"
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "15.png" in warnings[0]


def test_on_bad_frame_stop_ends_with_exit_2_naming_the_file(tmp_path, capsys):
    write_pngs(tmp_path / "scans", 6, corrupt=3)
    report = tmp_path / "run.json"
    code = main(["--images", str(tmp_path / "scans"), "--headless", "--quiet", "--model",
                 str(FIXTURE), "--on-bad-frame", "stop", "--report", str(report)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("edge-run: error: cannot read image") and "03.png" in err[0]
    data = json.loads(report.read_text())  # what ran before the stop is still reported
    assert data["frames"] == 3 and data["stop_reason"].startswith("bad frame: ")


class StoppingCapture:
    """A cv2.VideoCapture stand-in for a camera that delivers ``frames`` frames, then nothing
    (read() fails) even after being reopened: unplugged."""

    def __init__(self, frames: int):
        self.remaining = frames

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def read(self):
        if self.remaining <= 0:
            return False, None
        self.remaining -= 1
        return True, phantom_pair(self.remaining, 128, 96)[0]

    def set(self, prop, value) -> bool:
        return True

    def get(self, prop) -> float:
        return 0.0

    def release(self) -> None:
        pass


@pytest.mark.parametrize("latest", ["--latest", "--no-latest"])
def test_a_lost_camera_ends_with_exit_1_and_says_so(tmp_path, monkeypatch, capsys, latest):
    capture = StoppingCapture(frames=5)
    monkeypatch.setitem(sources._OPENERS, "camera", lambda cfg: CameraSource(
        cfg.target, retry_s=cfg.retry_s, capture_factory=lambda target, api: capture))
    report, out = tmp_path / "run.json", tmp_path / "out.avi"
    code = main(["--camera", "0", "--retry-s", "0.3", latest, "--headless", "--quiet",
                 "--model", str(FIXTURE), "--report", str(report), "--record", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("edge-run: error: source camera 0 lost: no frame for 0.3 s")
    data = json.loads(report.read_text())
    assert data["stop_reason"].startswith("source camera 0 lost") and data["frames"] >= 1
    assert video_frames(out) == data["frames"]


def test_a_report_that_cannot_be_written_at_the_end_goes_to_stderr(tmp_path, monkeypatch,
                                                                   capsys):
    def disk_full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(edge.runreport, "write_json_atomic", disk_full)
    code = main(["--headless", "--quiet", "--max-frames", "3", "--model", str(FIXTURE),
                 "--report", str(tmp_path / "run.json")])
    err = capsys.readouterr().err
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("edge-run: error: --report") and "No space left" in last
    printed = json.loads(err[: err.rindex("edge-run: error:")])
    assert printed["frames"] == 3 and printed["stop_reason"] == "max frames"


def copy_model(tmp_path: Path, sidecar_changes: dict) -> Path:
    model = tmp_path / FIXTURE.name
    shutil.copy(FIXTURE, model)
    meta = json.loads(FIXTURE.with_suffix(".json").read_text())
    model.with_suffix(".json").write_text(json.dumps({**meta, **sidecar_changes}))
    return model


def test_sha256_mismatch_refuses_unless_allowed_then_warns_and_reports(tmp_path, capsys):
    model = copy_model(tmp_path, {"sha256": "0" * 64})
    report = tmp_path / "run.json"
    argv = ["--headless", "--quiet", "--max-frames", "2", "--model", str(model),
            "--report", str(report)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sha256" in err[0] and "--allow-sha256-mismatch" in err[0]
    assert not report.exists()
    assert main([*argv, "--allow-sha256-mismatch"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edge-run: warning:") and "sha256" in err[0]
    data = json.loads(report.read_text())
    assert data["sha256_check"] == "mismatch" and data["sidecar_sha256"] == "0" * 64
    assert data["model_sha256"] == sha256_file(model)


class CroppedSource(InterruptingSource):
    """A source that knows where the scanner image is (as a DICOM source may)."""

    info = SourceInfo("cropped", roi=(0, 0, 120, 80))  # a corner away from the phantom nerve

    def __init__(self):
        super().__init__()

    def read(self) -> Frame | None:
        self.reads += 1
        image, _ = phantom_pair(self.reads)
        return Frame(image=image, index=self.reads - 1, name=f"{self.reads:06d}", timestamp=0.0)


def test_a_source_roi_is_used_when_no_roi_is_given(monkeypatch):
    monkeypatch.setattr(edge.loop, "open_source", lambda cfg, watched=False: CroppedSource())
    sink = StopAfter(2)
    monkeypatch.setattr(edge.loop, "open_sinks", lambda cfg, stack, fps, model=None, **kw: [sink])
    run(RunConfig(model=str(FIXTURE), headless=True, quiet=True))
    for result in sink.results:  # without the crop the fixture finds the nerve mid-frame
        assert not result.mask[80:].any() and not result.mask[:, 120:].any()


def test_realtime_plays_a_clip_at_its_own_rate(tmp_path, small_video):
    report = tmp_path / "run.json"
    assert main(["--video", str(small_video), "--realtime", "--headless", "--quiet",
                 "--model", str(FIXTURE), "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    # 12 frames of a 10 fps clip: 11 periods between the first and the last (minus slack).
    assert data["frames"] == 12 and data["wall_s"] >= 1.1 - 0.1
    assert data["source"]["realtime"] is True
