"""A real PACS: Debian's Orthanc on loopback. edge-run sends its SEG and overlay capture by
C-STORE and STOW-RS; we fetch them back through Orthanc's REST API and decode the SEG, which
must equal the masks edge-run saved. Orthanc killed mid-send or down loses nothing."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from dicomfiles import make_us, read_masks

from edge.cli import main
from edge.io.dicom.outbox import OUTBOX, Outbox
from edge.io.dicom.pacs import PacsNode
from edge.io.phantom import phantom_pair

FIXTURE_MODEL = str(Path(__file__).resolve().parents[2] / "edge/models/nerve_fixture_int8.tflite")
CINE_FRAMES = 5


def phantom_cine(folder: Path) -> Path:
    frames = np.stack([phantom_pair(i)[0] for i in range(CINE_FRAMES)])
    return make_us(folder / "cine.dcm", frames, frame_time_ms=33.3)


def run_and_send(cine: Path, out: Path, pacs: str, *extra: str) -> int:
    return main(["--dicom", str(cine), "--model", FIXTURE_MODEL, "--headless", "--quiet",
                 "--save-masks", str(out / "masks"), "--dicom-out", str(out / "dcm"),
                 "--pacs", pacs, *extra])


def header(path: Path):
    import pydicom

    return pydicom.dcmread(path, stop_before_pixels=True)


def saved_masks(folder: Path) -> np.ndarray:
    return np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) > 0
                     for p in sorted(folder.glob("*.png"))])


def check_round_trip(orthanc, cine: Path, out: Path) -> np.ndarray:
    """The SEG and the capture are in Orthanc; the SEG decodes to the saved masks."""
    import highdicom as hd
    import pydicom

    source = header(cine)
    local_seg = header(out / "dcm" / f"{cine.stem}.seg.dcm")
    stored = orthanc.instance_file(str(local_seg.SOPInstanceUID))
    assert stored is not None, "the SEG is not in Orthanc"
    seg = hd.seg.segread(io.BytesIO(stored))
    expected = saved_masks(out / "masks")
    frames = range(1, int(source.get("NumberOfFrames", 1)) + 1)
    np.testing.assert_array_equal(read_masks(seg, str(source.SOPInstanceUID), frames), expected)
    capture = header(out / "dcm" / f"{cine.stem}.overlay.dcm")
    fetched = pydicom.dcmread(io.BytesIO(orthanc.instance_file(str(capture.SOPInstanceUID))))
    assert int(fetched.NumberOfFrames) == len(expected)
    assert fetched.StudyInstanceUID == source.StudyInstanceUID
    assert not list((out / "dcm" / OUTBOX).glob("*.dcm"))  # nothing left to send
    return expected


def test_cstore_round_trip_seg_equals_saved_masks(orthanc, tmp_path) -> None:
    cine = phantom_cine(tmp_path)
    assert run_and_send(cine, tmp_path / "run", orthanc.dimse) == 0
    masks = check_round_trip(orthanc, cine, tmp_path / "run")
    assert masks.any(axis=(1, 2)).all()  # the phantom's nerve was found in every frame
    assert orthanc.count() == 2


def test_stow_rs_round_trip_on_pydicoms_jpeg_cine(orthanc, us_examples, tmp_path) -> None:
    cine = us_examples["examples_ybr_color.dcm"]
    assert run_and_send(cine, tmp_path / "run", orthanc.dicomweb) == 0
    check_round_trip(orthanc, cine, tmp_path / "run")
    assert orthanc.count() == 2


def test_refusal_is_one_line_and_the_files_wait_for_a_flush(strict_orthanc, tmp_path,
                                                             capsys) -> None:
    cine = phantom_cine(tmp_path)
    wrong = strict_orthanc.dimse.replace(":ORTHANC", ":NOT_ORTHANC")
    assert run_and_send(cine, tmp_path / "run", wrong) == 0  # the results are on disk
    err = capsys.readouterr().err
    assert "rejected the association" in err and "2 file(s) kept in" in err
    assert len(list((tmp_path / "run" / "dcm" / OUTBOX).glob("*.dcm"))) == 2
    assert strict_orthanc.count() == 0
    flush = ["--pacs-flush", "--dicom-out", str(tmp_path / "run" / "dcm"),
             "--pacs", strict_orthanc.dimse]
    assert main(flush) == 0
    check_round_trip(strict_orthanc, cine, tmp_path / "run")


def test_orthanc_killed_mid_send_loses_nothing(orthanc, tmp_path) -> None:
    cines = []
    for i in range(2):
        (tmp_path / f"c{i}").mkdir()
        cines.append(phantom_cine(tmp_path / f"c{i}"))
    dead = orthanc.dimse
    orthanc.kill()  # down from the start: both runs keep their files
    for i, cine in enumerate(cines):
        assert run_and_send(cine, tmp_path / "run", dead, "--save-masks",
                            str(tmp_path / f"masks{i}")) == 0
    box = Outbox(tmp_path / "run" / "dcm" / OUTBOX)
    assert len(box.pending()) == 4
    orthanc.start()
    result = box.flush(PacsNode.parse(orthanc.dimse), tries=2, backoff_s=0.1,
                       on_sent=lambda path: orthanc.kill())  # dies after the first file
    assert (result.sent, result.kept) == (1, 3) and len(box.pending()) == 3
    orthanc.start()  # same storage: what it acknowledged before dying is still there
    assert orthanc.count() == 1
    flush = ["--pacs-flush", "--dicom-out", str(tmp_path / "run" / "dcm"),
             "--pacs", orthanc.dicomweb]
    assert main(flush) == 0
    assert orthanc.count() == 4 and not box.pending()
