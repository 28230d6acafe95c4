"""The edge-convert gate per class (convert.validate): each class's Dice drop is checked."""

from __future__ import annotations

import numpy as np

from convert.validate import GateConfig, _class_row, gate_rules, validate
from edge.model.evaluate import Evaluation, LabelledFrames
from edge.model.metadata import ModelMeta
from edge.model.segmodel import SegModel
from edge.model.settings import resolve

CLASSES = ({"id": 1, "name": "nerve", "color": "#ffc800"},
           {"id": 2, "name": "vessel", "color": "#ff3030"})


def ev(nerve: float, vessel: float) -> Evaluation:
    def m(d):
        return {"per_image_dice": d, "pooled_dice": d}
    return Evaluation({}, {"nerve": m(nerve), "vessel": m(vessel)}, None, np.zeros(1))


def as_model(backend) -> SegModel:
    return SegModel(backend, resolve(ModelMeta(classes=CLASSES), (8, 8), 1))


def test_a_drop_in_one_class_fails_the_gate_and_names_it():
    ref = ev(0.80, 0.60)
    model = as_model(None)
    rows = {"keras-float": _class_row(ref, ref, "reference", model, drift_mean=0.0),
            "int8": _class_row(ev(0.80, 0.55), ref, "export", model, drift_mean=0.001)}
    assert rows["int8"]["classes"]["vessel"]["dice_drop"] == 0.6 - 0.55
    assert rows["int8"]["per_image_dice"] == (0.80 + 0.55) / 2
    failures = gate_rules(rows, GateConfig(max_dice_drop=0.01))
    assert len(failures) == 1 and "vessel" in failures[0] and "nerve" not in failures[0]
    assert gate_rules(rows, GateConfig(max_dice_drop=0.06)) == []


class Channels:
    """A fake C-channel model: the labels themselves, optionally with one channel erased."""

    input_hw, input_channels = (8, 8), 1

    def __init__(self, labels, erase=None):
        self.labels, self.erase, self.i = labels.astype(np.float32), erase, 0

    def run(self, x):
        out = self.labels[self.i].copy()
        if self.erase is not None:
            out[..., self.erase] = 0.0
        self.i += 1
        return [out[None]]


def test_validate_classes_scores_every_variant_per_class():
    labels = np.zeros((2, 8, 8, 2), np.uint8)
    labels[:, :4, :4, 0], labels[:, 4:, 4:, 1] = 1, 1
    frames = LabelledFrames(np.zeros((2, 8, 8), np.uint8), labels)
    src = as_model(Channels(labels))
    result = validate(src, src, {"int8": as_model(Channels(labels, erase=1))}, frames,
                      GateConfig())
    assert result.rows["int8"]["classes"]["vessel"]["dice_drop"] == 1.0
    assert result.rows["int8"]["classes"]["nerve"]["dice_drop"] == 0.0
    assert not result.passed and "vessel" in result.failures[0]
