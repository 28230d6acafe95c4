"""DICOM outputs: the Segmentation (highdicom) and the overlay capture, through DicomSink."""

from __future__ import annotations

import numpy as np
import pytest
from dicomfiles import PATIENT_ID, read_masks

from edge.errors import OutputError
from edge.io.dicom.read import DicomSource
from edge.io.dicom.seg import build_capture, build_seg
from edge.io.dicom.sink import DicomSink
from edge.types import FrameResult

PERIPHERAL_NERVE = ("84782009", "SCT")


def random_masks(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((frames, height, width)) > 0.8


def header(path):
    import pydicom

    return pydicom.dcmread(path, stop_before_pixels=True)


def reread(ds, tmp_path):
    import highdicom as hd

    path = tmp_path / "seg.dcm"
    ds.save_as(path)
    return hd.seg.segread(path)


def test_cine_seg_round_trips_every_frame_and_refers_to_its_source(us_examples, tmp_path):
    src = header(us_examples["examples_ybr_color.dcm"])
    masks = random_masks(30, src.Rows, src.Columns)
    masks[4] = False  # an empty frame is stored too ("no nerve" is a result)
    seg = reread(build_seg(src, masks, range(1, 31)), tmp_path)
    np.testing.assert_array_equal(read_masks(seg, src.SOPInstanceUID, range(1, 31)), masks)
    refs = [item.DerivationImageSequence[0].SourceImageSequence[0]
            for item in seg.PerFrameFunctionalGroupsSequence]
    assert [int(r.ReferencedFrameNumber) for r in refs] == list(range(1, 31))
    assert {r.ReferencedSOPInstanceUID for r in refs} == {src.SOPInstanceUID}
    assert refs[0].ReferencedSOPClassUID == src.SOPClassUID


def test_seg_has_new_uids_in_the_source_study_and_a_coded_nerve_segment(us_examples, tmp_path):
    src = header(us_examples["examples_rgb_color.dcm"])
    seg = reread(build_seg(src, random_masks(1, src.Rows, src.Columns), [1]), tmp_path)
    assert seg.StudyInstanceUID == src.StudyInstanceUID
    assert seg.SeriesInstanceUID != src.SeriesInstanceUID
    assert seg.SOPInstanceUID != src.SOPInstanceUID
    assert seg.SegmentationType == "BINARY" and len(seg.SegmentSequence) == 1
    segment = seg.SegmentSequence[0]
    code = segment.SegmentedPropertyTypeCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator) == PERIPHERAL_NERVE
    assert segment.SegmentLabel == "nerve"


def test_capture_is_a_multiframe_true_color_sc_in_the_source_study(us_examples):
    from pydicom import uid

    src = header(us_examples["examples_ybr_color.dcm"])
    frames = np.random.default_rng(1).integers(0, 255, (3, src.Rows, src.Columns, 3), np.uint8)
    sc = build_capture(src, frames, 30.0)
    assert sc.SOPClassUID == uid.MultiFrameTrueColorSecondaryCaptureImageStorage
    assert sc.StudyInstanceUID == src.StudyInstanceUID
    assert sc.SeriesInstanceUID != src.SeriesInstanceUID
    np.testing.assert_array_equal(sc.pixel_array, frames)


def test_sink_writes_seg_and_capture_per_file_at_close(us_file, tmp_path):
    import highdicom as hd
    import pydicom

    gray = np.random.default_rng(2).integers(0, 255, (4, 24, 32), np.uint8)
    path = us_file("cine.dcm", pixels=gray)
    source = DicomSource(path)
    sink = DicomSink(tmp_path / "out", source, log=None)
    expected = random_masks(4, 24, 32, seed=3)
    for k in range(4):
        frame = source.read()
        mask = expected[k].astype(np.uint8) * 255
        sink.write(FrameResult(frame.index, frame.name, np.dstack([frame.image] * 3), mask,
                               detected=bool(mask.any()), area_px=int((mask > 0).sum())))
    sink.close()
    seg = hd.seg.segread(tmp_path / "out" / "cine.seg.dcm")
    uid = header(path).SOPInstanceUID
    np.testing.assert_array_equal(read_masks(seg, uid, range(1, 5)), expected)
    capture = pydicom.dcmread(tmp_path / "out" / "cine.overlay.dcm")
    assert int(capture.NumberOfFrames) == 4 and capture.PatientID == PATIENT_ID
    assert sink.outbox is None  # no PACS, no outbox


def test_sink_refuses_a_source_that_is_not_dicom(tmp_path):
    from edge.io.phantom import PhantomSource

    with pytest.raises(OutputError, match="needs DICOM input"):
        DicomSink(tmp_path, PhantomSource(64, 48))
