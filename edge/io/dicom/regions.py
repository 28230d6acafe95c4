"""What the Sequence of Ultrasound Regions (0018,6011) tells: where the image is on the screen
and how big one pixel is. Works on any pydicom Dataset-like object; imports no DICOM library.

Only a 2-D tissue region is used (Region Spatial Format 1 = 2D, Region Data Type 1 = tissue)
whose physical units are cm in both directions (code 3). With several such regions (a dual
view) the largest is used. A region that does not fit inside the image (the file was resized
or cropped after export: its deltas no longer describe these pixels) is ignored with a warning,
so a wrong size is never reported as a measurement.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

SPATIAL_2D = 1  # Region Spatial Format (0018,6012): 2D (tissue or flow)
DATA_TISSUE = 1  # Region Data Type (0018,6014): tissue
UNITS_CM = 3  # Physical Units X/Y Direction (0018,6024/6026): cm
MM_PER_CM = 10.0
EDGE_SLACK_PX = 1  # scanners often write MaxX1 = Columns (one past the last pixel): clipped


@dataclass(frozen=True)
class UltrasoundRegion:
    """roi: (x, y, w, h) in image pixels; pixel_area_mm2: area of one pixel, or None when the
    region has no usable physical deltas."""

    roi: tuple[int, int, int, int]
    pixel_area_mm2: float | None


def _fits(x0: int, y0: int, x1: int, y1: int, width: int, height: int) -> bool:
    return (0 <= x0 <= x1 <= width - 1 + EDGE_SLACK_PX
            and 0 <= y0 <= y1 <= height - 1 + EDGE_SLACK_PX)


def _pixel_area(region) -> float | None:
    units = (region.get("PhysicalUnitsXDirection"), region.get("PhysicalUnitsYDirection"))
    dx, dy = region.get("PhysicalDeltaX"), region.get("PhysicalDeltaY")
    if units != (UNITS_CM, UNITS_CM) or not dx or not dy:
        return None
    return abs(float(dx)) * MM_PER_CM * abs(float(dy)) * MM_PER_CM


def _tissue_regions(ds) -> list:
    return [r for r in ds.get("SequenceOfUltrasoundRegions", None) or []
            if r.get("RegionSpatialFormat") == SPATIAL_2D
            and r.get("RegionDataType") == DATA_TISSUE]


def image_region(ds, label: str = "DICOM file") -> UltrasoundRegion | None:
    """The 2-D tissue region of ``ds`` (largest when several), or None when there is none
    or it does not fit inside the Rows x Columns image."""
    width, height = int(ds.Columns), int(ds.Rows)
    best: UltrasoundRegion | None = None
    for region in _tissue_regions(ds):
        x0, y0 = int(region.RegionLocationMinX0), int(region.RegionLocationMinY0)
        x1, y1 = int(region.RegionLocationMaxX1), int(region.RegionLocationMaxY1)
        if not _fits(x0, y0, x1, y1, width, height):
            logger.warning(
                "%s: ultrasound region (%d,%d)-(%d,%d) lies outside the %dx%d image (resized or "
                "cropped after export?); ignoring it: no default ROI, nerve area in px",
                label, x0, y0, x1, y1, width, height)
            continue
        x1, y1 = min(x1, width - 1), min(y1, height - 1)
        candidate = UltrasoundRegion((x0, y0, x1 - x0 + 1, y1 - y0 + 1), _pixel_area(region))
        if best is None or candidate.roi[2] * candidate.roi[3] > best.roi[2] * best.roi[3]:
            best = candidate
    return best
