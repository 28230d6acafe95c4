"""DICOM outputs of a run: a Segmentation of the nerve (highdicom) and a Secondary Capture of
the overlays for viewers without SEG support. Both get new UIDs, a new series in the source's
study, and the source's patient/study modules (that is what a PACS files them under); nothing
of the patient is printed (library warnings that quote header values are silenced here).

highdicom builds a SEG for a single source frame when the source has no Frame of Reference,
which is the case of ultrasound cines. For a cine, highdicom builds the one-frame SEG (all
modules, the segment, the references) from a one-frame view of the header, and ``_extend``
repeats its per-frame item for every frame: each refers to its source frame (Referenced Frame
Number) and has its own index on a second dimension, the Temporal Position Index. highdicom's
own reader decodes the result frame by frame (tests/dicom check it equals the masks).
"""

from __future__ import annotations

import copy
import datetime
import warnings
from collections.abc import Sequence

import numpy as np

from edge import __version__ as EDGE_VERSION
from edge.deps import require
from edge.errors import OutputError

SEG_SERIES_NUMBER = 9901  # high series numbers keep derived series after the scanner's own
SC_SERIES_NUMBER = 9902
MANUFACTURER = "nerve-edge"
MODEL_NAME = "edge-run"
SEGMENT_LABEL = "nerve"
ALGORITHM_NAME = "nerve-edge U-Net"
TEMPORAL_POSITION_INDEX = 0x00209128  # (0020,9128), in the Frame Content Sequence
FRAME_CONTENT_SEQUENCE = 0x00209111
FRAME_TIME = 0x00181063  # (0018,1063): the Frame Increment Pointer of the capture


def _segment(hd, codes, model_version: str):
    return hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=SEGMENT_LABEL,
        segmented_property_category=codes.SCT.AnatomicalStructure,
        segmented_property_type=codes.SCT.PeripheralNerve,  # SCT 84782009
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=ALGORITHM_NAME, version=model_version,
            family=codes.cid7162.ArtificialIntelligence),
    )


def build_seg(source, masks: np.ndarray, frame_numbers: Sequence[int],
              model_version: str = "unknown"):
    """A BINARY Segmentation of ``masks`` (F x H x W, nonzero = nerve) on the source image
    ``source`` (a pydicom header); ``frame_numbers`` are the 1-based source frames of the
    masks. Every given frame is stored, empty ones too, so the SEG says "no nerve" as well."""
    hd = require("highdicom")
    from pydicom.sr.codedict import codes

    masks = np.asarray(masks) > 0
    multi = "NumberOfFrames" in source
    view = _with_type2(source)
    if multi:  # a one-frame, single-frame-class view: what highdicom accepts without FoR
        del view.NumberOfFrames
        view.SOPClassUID = _single_frame_class(source.SOPClassUID)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some quote header values (the patient's name)
        seg = hd.seg.Segmentation(
            source_images=[view], pixel_array=masks[:1], segmentation_type="BINARY",
            segment_descriptions=[_segment(hd, codes, model_version)],
            series_instance_uid=hd.UID(), series_number=SEG_SERIES_NUMBER,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer=MANUFACTURER,
            manufacturer_model_name=MODEL_NAME, software_versions=EDGE_VERSION,
            device_serial_number="0", omit_empty_frames=False,
            content_description="nerve outline by nerve-edge",
        )
    if multi:
        _extend(seg, source, masks, frame_numbers)
    return seg


TYPE2_KEYWORDS = (  # Patient and General Study attributes a SEG must have, maybe empty
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "StudyID", "AccessionNumber", "ReferringPhysicianName",
)
REFERENCE_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")


def _with_type2(source):
    """A shallow copy of the header with missing type-2 attributes present and empty (minimal
    exports leave out Patient ID and the like); the UIDs a reference needs must be there."""
    missing = [k for k in REFERENCE_KEYWORDS if not source.get(k)]
    if missing:
        raise OutputError(f"the source has no {', '.join(missing)}: a SEG cannot refer to it; "
                          f"run without --dicom-out")
    view = copy.copy(source)
    for keyword in TYPE2_KEYWORDS:
        if keyword not in view:
            setattr(view, keyword, "")
    for keyword, separators in (("StudyDate", ".-/"), ("StudyTime", ":")):
        setattr(view, keyword, _conformant(keyword, view.get(keyword), separators))
    return view


def _conformant(keyword: str, value, separators: str) -> str:
    """Old ACR-NEMA style dates/times ("2001.01.31", "14:04:38") in DICOM form, else empty."""
    from pydicom.valuerep import DA, TM

    text = str(value or "")
    for sep in separators:
        text = text.replace(sep, "")
    if text:
        try:
            (DA if keyword == "StudyDate" else TM)(text)
        except ValueError:
            return ""
    return text


def _single_frame_class(sop_class: str) -> str:
    from pydicom import uid

    singles = {uid.UltrasoundMultiFrameImageStorage: uid.UltrasoundImageStorage}
    return singles.get(sop_class, uid.SecondaryCaptureImageStorage)


def _extend(seg, source, masks: np.ndarray, frame_numbers: Sequence[int]) -> None:
    """One per-frame item per mask, each naming its source frame; see the module docstring."""
    from pydicom.dataset import Dataset
    from pydicom.pixels import pack_bits

    for ref in (*seg.SourceImageSequence,
                *seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence):
        ref.ReferencedSOPClassUID = source.SOPClassUID
    template = seg.PerFrameFunctionalGroupsSequence[0]
    items = []
    for position, number in enumerate(frame_numbers, start=1):
        item = copy.deepcopy(template)
        src = item.DerivationImageSequence[0].SourceImageSequence[0]
        src.ReferencedSOPClassUID = source.SOPClassUID
        src.ReferencedFrameNumber = int(number)
        content = item.FrameContentSequence[0]
        content.DimensionIndexValues = [1, position]
        content.TemporalPositionIndex = position
        items.append(item)
    seg.PerFrameFunctionalGroupsSequence = items
    time_dim = Dataset()
    time_dim.DimensionOrganizationUID = seg.DimensionIndexSequence[0].DimensionOrganizationUID
    time_dim.DimensionIndexPointer = TEMPORAL_POSITION_INDEX
    time_dim.FunctionalGroupPointer = FRAME_CONTENT_SEQUENCE
    time_dim.DimensionDescriptionLabel = "Temporal Position Index"
    seg.DimensionIndexSequence.append(time_dim)
    seg.NumberOfFrames = len(items)
    seg.PixelData = pack_bits(masks.astype(np.uint8))


def build_capture(source, overlays_rgb: np.ndarray, fps: float | None):
    """A Multi-frame True Color Secondary Capture of the overlays (F x H x W x 3 RGB uint8),
    in the source's study, for viewers that do not draw SEGs."""
    require("pydicom")
    from pydicom import uid
    from pydicom.dataset import FileDataset, FileMetaDataset

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = uid.MultiFrameTrueColorSecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = uid.generate_uid()
    meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # value checks may quote the patient's name
        _copy_patient_study(ds, _with_type2(source))
    now = datetime.datetime.now()
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = uid.generate_uid()
    ds.SeriesNumber, ds.InstanceNumber = SC_SERIES_NUMBER, 1
    ds.Modality = str(source.get("Modality", "US"))
    ds.SeriesDescription = "nerve overlay (nerve-edge)"
    ds.ConversionType = "WSD"  # workstation: rendered by software
    ds.Manufacturer, ds.ManufacturerModelName = MANUFACTURER, MODEL_NAME
    ds.SoftwareVersions = EDGE_VERSION
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.BurnedInAnnotation = "YES"  # the area text is drawn into the pixels
    frames = np.ascontiguousarray(overlays_rgb, dtype=np.uint8)
    ds.NumberOfFrames = len(frames)
    ds.Rows, ds.Columns = int(frames.shape[1]), int(frames.shape[2])
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if fps:
        ds.FrameTime = f"{1000.0 / fps:.3f}"
        ds.FrameIncrementPointer = FRAME_TIME
    ds.SourceImageSequence = [_reference(source)]
    ds.PixelData = frames.tobytes()
    return ds


PATIENT_STUDY_KEYWORDS = (*TYPE2_KEYWORDS, "StudyInstanceUID", "StudyDescription",
                          "SpecificCharacterSet")


def _copy_patient_study(ds, source) -> None:
    """Patient and General Study modules from the source (completed by _with_type2)."""
    for keyword in PATIENT_STUDY_KEYWORDS:
        if keyword in source:
            setattr(ds, keyword, source.data_element(keyword).value)


def _reference(source):
    from pydicom.dataset import Dataset

    ref = Dataset()
    ref.ReferencedSOPClassUID = source.SOPClassUID
    ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
    return ref
