"""Sequence of Ultrasound Regions -> default ROI and pixel area (edge/io/dicom/regions.py)."""

from __future__ import annotations

import numpy as np
import pytest

from edge import log
from edge.io.dicom.read import DicomSource
from edge.io.dicom.regions import image_region
from edge.stats import NerveArea

GRAY = np.zeros((1, 100, 200), np.uint8)  # 200 wide, 100 high


def region_of(us_file, *regions, units=3):
    import pydicom

    return image_region(pydicom.dcmread(us_file("r.dcm", pixels=GRAY, regions=regions,
                                                 units=units)))


def test_tissue_region_gives_roi_and_pixel_area_in_mm2(us_file) -> None:
    region = region_of(us_file, (20, 10, 179, 89, (0.02, 0.03)))
    assert region.roi == (20, 10, 160, 80)
    assert region.pixel_area_mm2 == pytest.approx(0.2 * 0.3)  # 0.02 cm = 0.2 mm


def test_largest_tissue_region_wins(us_file) -> None:
    region = region_of(us_file, (0, 0, 49, 49, (0.01, 0.01)), (60, 5, 199, 99, (0.02, 0.02)))
    assert region.roi == (60, 5, 140, 95)


def test_max_one_past_the_edge_is_clipped_not_rejected(us_file) -> None:
    assert region_of(us_file, (10, 10, 200, 100, (0.01, 0.01))).roi == (10, 10, 190, 90)


def test_region_outside_the_image_is_ignored_with_a_warning(us_file, capsys) -> None:
    log.configure("edge-test")
    assert region_of(us_file, (10, 10, 399, 199, (0.01, 0.01))) is None
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("edge-test: warning: ")
    assert "outside the 200x100 image" in err[0]


def test_units_other_than_cm_give_a_roi_but_no_mm2(us_file) -> None:
    region = region_of(us_file, (0, 0, 99, 99, (0.5, 0.5)), units=4)  # 4 = seconds
    assert region.roi == (0, 0, 100, 100) and region.pixel_area_mm2 is None


def test_source_exposes_the_region(us_file) -> None:
    path = us_file("s.dcm", pixels=GRAY, regions=[(20, 10, 179, 89, (0.05, 0.05))])
    source = DicomSource(path)
    assert source.info.roi == (20, 10, 160, 80)
    assert source.info.pixel_area_mm2 == pytest.approx(0.25)
    source.close()


def test_nerve_area_text_and_summary_in_mm2_and_px() -> None:
    mm2 = NerveArea(0.25)
    mm2.add(400, True)
    mm2.add(0, False)
    assert mm2.text(400, True) == "nerve: yes, 100.0 mm2" and mm2.mm2(400) == 100.0
    assert mm2.summary() == {"unit": "mm2", "pixel_area_mm2": 0.25, "frames": 2,
                             "frames_with_nerve": 1, "mean": 100.0, "max": 100.0}
    px = NerveArea()
    assert px.text(400, True) == "nerve: yes, 400 px" and px.mm2(400) is None
    assert px.text(0, False) == "nerve: no" and px.summary()["unit"] == "px"
