"""edge-run on DICOM input, end to end: every shipped example, the region as ROI, mm2 areas in
the overlay / report / status JSON, and no patient data in what the run prints or serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from dicomfiles import PATIENT_ID, PATIENT_NAME, US_EXAMPLES, make_us, read_masks

from edge.cli import main
from edge.io.dicom.read import DicomSource
from edge.io.pacing import Paced
from edge.io.phantom import phantom_pair
from edge.io.sources import SourceConfig, innermost, open_source
from edge.loop import open_model
from edge.meter import StageMeter
from edge.runconfig import RunConfig
from edge.stats import NerveArea
from edge.view.hub import status_of
from edge.view.render import render, stats_lines

FIXTURE_MODEL = str(Path(__file__).resolve().parents[2] / "edge/models/nerve_fixture_int8.tflite")
CINE_FRAMES = 6
REGION_X1 = 199  # the region is the left 200 px; the phantom's nerve lies right of it
DELTA_CM = (0.01, 0.02)  # -> 0.1 mm x 0.2 mm = 0.02 mm2 per pixel
PIXEL_MM2 = 0.02


@pytest.fixture
def phantom_cine(tmp_path) -> Path:
    """6 phantom frames (580x420, nerve near x 240-335) as a US cine whose ultrasound
    region is the left 200 px."""
    frames = np.stack([phantom_pair(i)[0] for i in range(CINE_FRAMES)])
    return make_us(tmp_path / "cine.dcm", frames, frame_time_ms=33.3,
                   regions=[(0, 0, REGION_X1, 419, DELTA_CM)])


def masks_in(folder: Path) -> list[np.ndarray]:
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(folder.glob("*.png"))]


@pytest.mark.parametrize("name", sorted(US_EXAMPLES))
def test_every_shipped_example_runs_headless_and_saves_masks(us_examples, tmp_path, name):
    import highdicom as hd
    import pydicom

    ds = pydicom.dcmread(us_examples[name], stop_before_pixels=True)
    out = tmp_path / "masks"
    code = main(["--dicom", str(us_examples[name]), "--headless", "--save-masks", str(out),
                 "--dicom-out", str(tmp_path / "dcm"), "--quiet"])
    assert code == 0
    masks = masks_in(out)
    frames = int(ds.get("NumberOfFrames") or 1)
    assert len(masks) == frames
    assert all(m.shape == (ds.Rows, ds.Columns) and set(np.unique(m)) <= {0, 255}
               for m in masks)
    seg = hd.seg.segread(tmp_path / "dcm" / f"{Path(name).stem}.seg.dcm")
    numbers = range(1, frames + 1) if "NumberOfFrames" in ds else None
    decoded = read_masks(seg, str(ds.SOPInstanceUID), numbers)
    np.testing.assert_array_equal(decoded, np.stack(masks) > 0)


def _run(cine: Path, out: Path, *extra: str) -> list[np.ndarray]:
    argv = ["--dicom", str(cine), "--model", FIXTURE_MODEL, "--headless", "--quiet",
            "--save-masks", str(out), *extra]
    assert main(argv) == 0
    return masks_in(out)


def test_region_is_the_default_roi_and_roi_flag_overrides_it(phantom_cine, tmp_path) -> None:
    report = tmp_path / "run.json"
    in_region = _run(phantom_cine, tmp_path / "region", "--report", str(report))
    whole = _run(phantom_cine, tmp_path / "whole", "--roi", "0,0,580,420")
    assert json.loads(report.read_text())["config"]["roi"] == [0, 0, REGION_X1 + 1, 420]
    assert all(m[:, REGION_X1 + 1:].any() for m in whole)  # the nerve, outside the region
    assert not any(m[:, REGION_X1 + 1:].any() for m in in_region)  # cropped away by default


def test_report_gives_the_nerve_area_in_mm2(phantom_cine, tmp_path) -> None:
    report = tmp_path / "run.json"
    masks = _run(phantom_cine, tmp_path / "m", "--roi", "0,0,580,420", "--report", str(report))
    area = json.loads(report.read_text())["nerve_area"]
    assert area["unit"] == "mm2" and area["pixel_area_mm2"] == pytest.approx(PIXEL_MM2)
    assert area["frames"] == CINE_FRAMES and area["frames_with_nerve"] == CINE_FRAMES
    expected_max = max(int((m > 0).sum()) for m in masks) * PIXEL_MM2
    assert area["max"] == pytest.approx(expected_max, abs=0.01)


def test_report_stays_in_px_without_a_region(us_examples, tmp_path) -> None:
    report = tmp_path / "run.json"
    main(["--dicom", str(us_examples["examples_rgb_color.dcm"]), "--headless", "--quiet",
          "--report", str(report)])
    assert json.loads(report.read_text())["nerve_area"]["unit"] == "px"


def test_overlay_and_status_json_carry_mm2(phantom_cine) -> None:
    cfg = RunConfig(model=FIXTURE_MODEL, headless=True, quiet=True, roi=(0, 0, 580, 420),
                    source=SourceConfig(kind="dicom", target=str(phantom_cine)))
    meter = StageMeter()
    source = DicomSource(phantom_cine)
    model = open_model(cfg, Path(FIXTURE_MODEL)).with_source_roi(source.info.roi)
    area = NerveArea(source.info.pixel_area_mm2)
    frame = source.read()
    post = model(frame.image)
    area.add(post.area_px, post.detected)
    result = render(frame, post, meter, area, True, cfg.alpha, cfg.show_fps)
    assert result.detected
    assert result.area_mm2 == pytest.approx(result.area_px * PIXEL_MM2, abs=0.01)
    status = status_of(result)
    assert status["area_mm2"] == result.area_mm2
    text = stats_lines(meter, post, False, area)
    assert text == [f"nerve: yes, {result.area_mm2:.1f} mm2"]
    assert PATIENT_NAME.split("^")[0] not in json.dumps(status)
    source.close()


def test_nothing_of_the_patient_is_printed(phantom_cine, tmp_path, capsys) -> None:
    code = main(["--dicom", str(phantom_cine), "--model", FIXTURE_MODEL, "--headless",
                 "--dicom-out", str(tmp_path / "dcm"), "--report", str(tmp_path / "r.json")])
    assert code == 0
    printed = capsys.readouterr()
    everything = printed.out + printed.err + (tmp_path / "r.json").read_text()
    assert "dicom: wrote 2 file(s)" in printed.out
    for secret in (PATIENT_ID, "Doe", "Jane", "19700101"):
        assert secret not in everything


def test_dicom_out_needs_dicom_input(tmp_path, capsys) -> None:
    code = main(["--source", "phantom", "--headless", "--max-frames", "1", "--quiet",
                 "--dicom-out", str(tmp_path)])
    assert code == 2
    assert "--dicom-out needs DICOM input" in capsys.readouterr().err


def test_pacs_needs_dicom_out(us_examples, capsys) -> None:
    code = main(["--dicom", str(us_examples["examples_rgb_color.dcm"]), "--headless",
                 "--pacs", "127.0.0.1:4242:ORTHANC"])
    assert code == 2 and "--pacs needs --dicom-out" in capsys.readouterr().err


# ------------------------------------------------------------- files with no or cut pixels
def _no_pixel_data(path: Path) -> Path:
    import pydicom

    make_us(path, np.zeros((1, 16, 16), np.uint8))
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    return path


def _folder_with_a_cut_file(folder: Path, keep_bytes: int | None) -> Path:
    """a.dcm, b.dcm (2 frames, cut to ``keep_bytes``, or 5000 bytes short), c.dcm."""
    folder.mkdir()
    frames = np.stack([phantom_pair(i)[0][:96, :128] for i in range(2)])
    for name in ("a.dcm", "b.dcm", "c.dcm"):
        make_us(folder / name, frames)
    data = (folder / "b.dcm").read_bytes()
    (folder / "b.dcm").write_bytes(data[:keep_bytes or len(data) - 5000])
    return folder


def test_a_file_without_pixel_data_is_exit_2_naming_it_and_the_fix(tmp_path, capsys) -> None:
    path = _no_pixel_data(tmp_path / "header_only.dcm")
    code = main(["--dicom", str(path), "--model", FIXTURE_MODEL, "--headless", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert str(path) in err[0] and "no pixel data" in err[0] and "export" in err[0]
    assert "AttributeError" not in err[0]


# keep_bytes None: cut inside the pixel data (frame 1 decodes); 400: cut inside the header
@pytest.mark.parametrize("keep_bytes, frames", [(None, 5), (400, 4)])
def test_a_cut_file_in_a_folder_is_warned_counted_and_reported(tmp_path, capsys, keep_bytes,
                                                               frames) -> None:
    folder = _folder_with_a_cut_file(tmp_path / "study", keep_bytes)
    report = tmp_path / "run.json"
    code = main(["--dicom", str(folder), "--model", FIXTURE_MODEL, "--headless",
                 "--report", str(report)])
    out, err = capsys.readouterr()
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "b.dcm" in warnings[0], err
    assert "edge-run: stopped: source ended (1 bad frame(s) skipped)" in out
    data = json.loads(report.read_text())
    assert data["frames"] == frames and data["bad_frames"] == 1
    assert "b.dcm" in data["bad_frames_first"][0]


def test_a_cut_file_under_on_bad_frame_stop_stops_naming_it(tmp_path, capsys) -> None:
    folder = _folder_with_a_cut_file(tmp_path / "study", 400)
    report = tmp_path / "run.json"
    code = main(["--dicom", str(folder), "--model", FIXTURE_MODEL, "--headless", "--quiet",
                 "--on-bad-frame", "stop", "--report", str(report)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "b.dcm" in err[0], err  # as for images and video
    data = json.loads(report.read_text())
    assert data["frames"] == 2 and data["stop_reason"].startswith("bad frame: ")


def test_a_watched_cine_is_paced_and_its_outputs_still_refer_to_it(phantom_cine, tmp_path,
                                                                   monkeypatch) -> None:
    """--serve shows the frames live: the cine goes through the one pacing wrapper at its own
    rate, and --dicom-out still finds the DICOM files under that wrapper."""
    import edge.loop

    opened = []

    def recording_open(cfg, watched=False):
        opened.append(open_source(cfg, watched))
        return opened[-1]

    monkeypatch.setattr(edge.loop, "open_source", recording_open)
    out = tmp_path / "dcm"
    assert main(["--dicom", str(phantom_cine), "--model", FIXTURE_MODEL, "--headless",
                 "--quiet", "--serve", "127.0.0.1:0", "--dicom-out", str(out)]) == 0
    watched = opened[-1]
    assert isinstance(watched, Paced) and isinstance(innermost(watched), DicomSource)
    assert watched.info.fps == pytest.approx(1000 / 33.3) and watched.info.paced
    assert (out / "cine.seg.dcm").is_file() and (out / "cine.overlay.dcm").is_file()
    assert main(["--dicom", str(phantom_cine), "--model", FIXTURE_MODEL, "--headless",
                 "--quiet", "--dicom-out", str(tmp_path / "batch")]) == 0
    assert isinstance(opened[-1], DicomSource)  # a headless batch: as fast as it goes


def test_a_module_loggers_warning_is_one_stderr_line_of_a_real_edge_run(tmp_path) -> None:
    """edge.io.dicom.regions warns through logging.getLogger(__name__): in a real edge-run
    process it reaches the one channel (edge.log): one ``edge-run: warning:`` line on stderr."""
    outside = (10, 10, 399, 199, (0.01, 0.01))  # past the 200x100 image: ignored, warned
    dcm = make_us(tmp_path / "r.dcm", pixels=np.zeros((1, 100, 200), np.uint8),
                  regions=(outside,))
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "--dicom", str(dcm), "--model",
                           FIXTURE_MODEL, "--headless", "--quiet"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("edge-run: warning: ") and "outside the 200x100 image" in err[0]
