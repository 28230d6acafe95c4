"""edge.stats.RunningStats: the report's area figures without a per-frame list, equal to the
ones the lists gave (mean rounded, max exact)."""

from __future__ import annotations

import random
import sys

from edge.model.classes import ClassTally
from edge.stats import MM2_DECIMALS, NerveArea, RunningStats
from edge.types import ClassResult


def test_running_figures_equal_the_list_ones():
    rng = random.Random(0)
    values = [round(rng.uniform(0.0, 5000.0), 2) for _ in range(50_000)]
    stats = RunningStats()
    for v in values:
        stats.add(v)
    assert stats.count == len(values)
    assert stats.max == max(values) and stats.min == min(values)
    assert stats.mean(MM2_DECIMALS) == round(sum(values) / len(values), MM2_DECIMALS)
    if sys.version_info < (3, 12):  # 3.12's sum() compensates rounding; 3.11's adds in order
        assert stats.total == sum(values)


def test_empty_stats_give_the_reports_none():
    stats = RunningStats()
    assert stats.count == 0 and stats.mean(2) is None and stats.max_or_none() is None


def test_area_and_class_summaries_keep_their_fields_and_values():
    area = NerveArea(0.0121)
    tally = ClassTally(NerveArea(0.0121))
    nerve_px, vessel_px = [], []
    for i in range(3_000):
        detected, px = i % 3 != 0, 100 + (i * 37) % 900
        area.add(px, detected)
        vessel = ClassResult(2, "vessel", "#ff3030", True, None, i % 5 == 0, px // 2, i % 7 == 0)
        nerve = ClassResult(1, "nerve", "#ffd400", False, None, detected, px, False)
        tally.add([nerve, vessel], vessel.near_centre)
        if detected:
            nerve_px.append(area.value(px))
        if vessel.detected:
            vessel_px.append(area.value(px // 2))
    got = area.summary()
    assert got == {"unit": "mm2", "pixel_area_mm2": 0.0121, "frames": 3_000,
                   "frames_with_nerve": len(nerve_px),
                   "mean": round(sum(nerve_px) / len(nerve_px), MM2_DECIMALS),
                   "max": max(nerve_px)}
    classes = tally.summary()["classes"]
    assert classes["vessel"]["frames_detected"] == len(vessel_px)
    assert classes["vessel"]["mean_area"] == round(sum(vessel_px) / len(vessel_px), 2)
    assert classes["vessel"]["max_area"] == max(vessel_px)
    assert (classes["nerve"]["mean_area"], classes["nerve"]["max_area"]) == (got["mean"],
                                                                              got["max"])
    assert set(classes["nerve"]) == {"id", "safety", "frames", "frames_detected", "area_unit",
                                     "mean_area", "max_area", "frames_near_centre"}
