"""Test DICOM files: pydicom's shipped ultrasound examples, and small made ones."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

# Every ultrasound example inside pydicom's package (pydicom 3.0): name -> what it covers.
# (US1_J2KR/US1_UNCR & co. are downloaded on demand; this machine cannot, so they are not here.)
US_EXAMPLES = {
    "examples_ybr_color.dcm": "30-frame cine, JPEG baseline, YBR_FULL_422, US regions",
    "examples_rgb_color.dcm": "single frame, uncompressed RGB",
    "examples_palette.dcm": "single frame, PALETTE COLOR, US regions (cropped image)",
    "examples_jpeg2k.dcm": "single frame, JPEG 2000 lossless, YBR_RCT",
    "ExplVR_BigEnd.dcm": "single frame, RGB, explicit VR big endian",
}
PATIENT_NAME = "Doe^Jane"
PATIENT_ID = "SECRET-ID-4711"


def shipped(name: str) -> Path:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom does not ship {name} in this version")
    return Path(path)


def _region(x0: int, y0: int, x1: int, y1: int, delta_cm: tuple[float, float], units: int):
    from pydicom.dataset import Dataset

    r = Dataset()
    r.RegionSpatialFormat, r.RegionDataType, r.RegionFlags = 1, 1, 0
    r.RegionLocationMinX0, r.RegionLocationMinY0 = x0, y0
    r.RegionLocationMaxX1, r.RegionLocationMaxY1 = x1, y1
    r.PhysicalUnitsXDirection = r.PhysicalUnitsYDirection = units
    r.PhysicalDeltaX, r.PhysicalDeltaY = delta_cm
    return r


def make_us(path: Path, pixels: np.ndarray, *, photometric: str | None = None,
            bits_stored: int | None = None, regions=(), units: int = 3,
            frame_time_ms: float | None = None, cine_rate: float | None = None,
            display_fps: float | None = None, rle: bool = False,
            multiframe: bool | None = None) -> Path:
    """Write an ultrasound DICOM of ``pixels`` (F x H x W gray or F x H x W x 3 RGB).

    photometric: MONOCHROME2/MONOCHROME1 for gray, RGB/YBR_FULL for colour (YBR_FULL stores
    the RGB pixels converted with pydicom). regions: (x0, y0, x1, y1, (dx_cm, dy_cm)) tuples.
    """
    from pydicom import uid
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.pixels import convert_color_space

    pixels = np.asarray(pixels)
    color = pixels.ndim == 4
    photometric = photometric or ("RGB" if color else "MONOCHROME2")
    frames = pixels.shape[0]
    multiframe = frames > 1 if multiframe is None else multiframe
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = (uid.UltrasoundMultiFrameImageStorage if multiframe
                                    else uid.UltrasoundImageStorage)
    meta.MediaStorageSOPInstanceUID = uid.generate_uid()
    meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID = PATIENT_NAME, PATIENT_ID
    ds.PatientBirthDate, ds.PatientSex = "19700101", "F"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid.generate_uid(), uid.generate_uid()
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", "A1"
    ds.ReferringPhysicianName, ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "", "US", 1, 1
    ds.Manufacturer = "test"
    ds.Rows, ds.Columns = pixels.shape[1], pixels.shape[2]
    ds.PhotometricInterpretation = photometric
    ds.SamplesPerPixel = 3 if color else 1
    if color:
        ds.PlanarConfiguration = 0
    wide = pixels.dtype == np.uint16
    ds.BitsAllocated = 16 if wide else 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit, ds.PixelRepresentation = ds.BitsStored - 1, 0
    if multiframe:
        ds.NumberOfFrames = frames
        ds.FrameIncrementPointer = 0x00181063
    for keyword, value in (("FrameTime", frame_time_ms), ("CineRate", cine_rate),
                           ("RecommendedDisplayFrameRate", display_fps)):
        if value is not None:
            setattr(ds, keyword, value)
    if regions:
        ds.SequenceOfUltrasoundRegions = [_region(*r[:4], r[4], units) for r in regions]
    stored = convert_color_space(pixels, "RGB", "YBR_FULL") if photometric == "YBR_FULL" else pixels
    data = stored if multiframe else stored[0]
    ds.PixelData = np.ascontiguousarray(data).tobytes()
    if rle:
        ds.compress(uid.RLELossless, encoding_plugin="pydicom")
    ds.save_as(path, enforce_file_format=True)
    return path


def read_masks(seg, source_uid: str, frame_numbers: Sequence[int] | None) -> np.ndarray:
    """The nerve masks (F x H x W bool) a SEG holds for source instance ``source_uid``;
    ``frame_numbers`` for a cine source, None for a single-frame one (highdicom's reader).
    Only the tests read SEGs back, so it lives here, not in edge/io/dicom/seg.py."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if frame_numbers is None:
            pixels = seg.get_pixels_by_source_instance([source_uid], combine_segments=True)
        else:
            pixels = seg.get_pixels_by_source_frame(
                source_uid, source_frame_numbers=list(frame_numbers), combine_segments=True)
    return np.asarray(pixels) > 0
