"""The edge-convert gate per class (convert.validate): each class's Dice drop is checked."""

from __future__ import annotations

import numpy as np

from convert.validate import GateConfig, _class_row, _validate_classes, gate_rules
from edge.model.evaluate import ClassEvaluation, LabelledFrames
from edge.model.postprocess import PostprocessConfig
from edge.model.preprocess import PreprocessConfig

POST = PostprocessConfig()


def ev(nerve: float, vessel: float) -> ClassEvaluation:
    def m(d):
        return {"per_image_dice": d, "pooled_dice": d}
    return ClassEvaluation({"nerve": m(nerve), "vessel": m(vessel)}, np.zeros(1))


def test_a_drop_in_one_class_fails_the_gate_and_names_it():
    ref = ev(0.80, 0.60)
    rows = {"keras-float": _class_row(ref, ref, "reference", POST, drift_mean=0.0),
            "int8": _class_row(ev(0.80, 0.55), ref, "export", POST, drift_mean=0.001)}
    assert rows["int8"]["classes"]["vessel"]["dice_drop"] == 0.6 - 0.55
    assert rows["int8"]["per_image_dice"] == (0.80 + 0.55) / 2
    failures = gate_rules(rows, GateConfig(max_dice_drop=0.01))
    assert len(failures) == 1 and "vessel" in failures[0] and "nerve" not in failures[0]
    assert gate_rules(rows, GateConfig(max_dice_drop=0.06)) == []


class Channels:
    """A fake C-channel model: the labels themselves, optionally with one channel erased."""

    def __init__(self, labels, erase=None):
        self.labels, self.erase, self.i = labels.astype(np.float32), erase, 0

    def run(self, x):
        out = self.labels[self.i].copy()
        if self.erase is not None:
            out[..., self.erase] = 0.0
        self.i += 1
        return [out[None]]


def test_validate_classes_scores_every_variant_per_class(monkeypatch):
    labels = np.zeros((2, 8, 8, 2), np.uint8)
    labels[:, :4, :4, 0], labels[:, 4:, 4:, 1] = 1, 1
    frames = LabelledFrames(np.zeros((2, 8, 8), np.uint8), labels)
    classes = ({"id": 1, "name": "nerve"}, {"id": 2, "name": "vessel"})
    import edge.model.backends

    monkeypatch.setattr(edge.model.backends, "open_backend", lambda p: Channels(labels, erase=1))
    src = Channels(labels)
    result = _validate_classes(src, src, {"int8": "m.tflite"}, frames,
                               PreprocessConfig(input_hw=(8, 8)), POST, GateConfig(), None,
                               classes)
    assert result.rows["int8"]["classes"]["vessel"]["dice_drop"] == 1.0
    assert result.rows["int8"]["classes"]["nerve"]["dice_drop"] == 0.0
    assert not result.passed and "vessel" in result.failures[0]
