"""Per-class metrics (edge.model.evaluate.class_metrics / score), class lists, folds and
class-id masks, on hand-made masks (NumPy + OpenCV only)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.errors import UserInputError
from edge.model.evaluate import LabelledFrames, class_metrics, score
from edge.model.metadata import ModelMeta
from edge.model.preprocess import PreprocessConfig
from edge.model.segmodel import SegModel
from edge.model.settings import resolve
from train.classes import nerve_channel, parse_classes
from train.datasets import Sample, load_arrays, split_fold


def masks(*boxes, hw=(8, 8)):
    """(N, H, W) uint8 masks, one per box (y0, y1, x0, x1) or None (empty)."""
    out = np.zeros((len(boxes), *hw), np.uint8)
    for i, b in enumerate(boxes):
        if b is not None:
            out[i, b[0]:b[1], b[2]:b[3]] = 1
    return out


def test_class_metrics_counts_frames_as_scannav_does():
    truth = masks((0, 4, 0, 4), (0, 4, 0, 4), None, None, None)
    pred = masks((0, 4, 0, 2), None, (5, 6, 5, 6), None, None)
    m = class_metrics(truth, pred)
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (1, 1, 1, 2)
    assert m["detection_rate"] == 0.5 and m["false_positive_rate"] == pytest.approx(1 / 3)
    # Dice over the frames holding the class only: frame 0 = 2*8/(16+8), frame 1 = 0
    assert m["per_image_dice"] == pytest.approx((2 * 8 / 24 + 0.0) / 2)
    assert m["pooled_dice"] == pytest.approx(2 * 8 / (32 + 8 + 1))
    assert (m["n_present"], m["n_absent"]) == (2, 3)


def test_class_metrics_without_any_truth_has_no_dice_or_detection():
    m = class_metrics(masks(None, None), masks(None, (0, 1, 0, 1)))
    assert m["per_image_dice"] is None and m["detection_rate"] is None
    assert m["false_positive_rate"] == 0.5


class FixedBackend:
    """Returns the stored (1, H, W, C) probability maps in turn."""

    input_hw, input_channels = (8, 8), 1

    def __init__(self, probs):
        self.probs, self.i = probs, 0

    def run(self, x):
        out = self.probs[self.i][None]
        self.i += 1
        return [out]


CLASSES = parse_classes("1,2", "nerve,vessel")


def as_model(backend, classes=None, threshold: float = 0.5) -> SegModel:
    meta = ModelMeta(threshold=threshold, classes=classes)
    return SegModel(backend, resolve(meta, backend.input_hw, backend.input_channels))


def test_score_decides_each_channel_with_its_class_settings():
    nerve, vessel = masks((0, 4, 0, 4), None), masks((4, 8, 4, 8), (4, 8, 4, 8))
    labels = np.stack([nerve, vessel], axis=-1)
    prob = labels.astype(np.float32) * 0.6  # every labelled pixel at p = 0.6
    prob[1, 0, 0, 0] = 0.9  # one stray nerve pixel in frame 1 (no nerve there)
    frames = LabelledFrames(np.zeros((2, 8, 8), np.uint8), labels)
    classes = ({**CLASSES[0], "min_area": 2}, {**CLASSES[1], "threshold": 0.7})
    ev = score(as_model(FixedBackend(prob), classes), frames)
    assert ev.classes["nerve"]["per_image_dice"] == 1.0
    assert ev.classes["nerve"]["fp"] == 0  # the stray pixel is under min_area 2
    assert ev.classes["vessel"]["tp"] == 0 and ev.classes["vessel"]["fn"] == 2  # 0.6 < 0.7
    assert ev.masks.shape == labels.shape


def test_score_refuses_labels_of_another_class_count():
    frames = LabelledFrames(np.zeros((1, 8, 8), np.uint8), np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="label channels"):
        score(as_model(FixedBackend([np.zeros((8, 8, 2), np.float32)]), CLASSES), frames)


def test_one_class_scores_like_the_nerve_only_evaluator():
    labels = masks((0, 4, 0, 4), (2, 6, 2, 6), None)
    prob = masks((0, 4, 0, 3), (2, 6, 2, 6), (0, 1, 0, 1)).astype(np.float32)[..., None]
    frames = LabelledFrames(np.zeros((3, 8, 8), np.uint8), labels)
    one = score(as_model(FixedBackend(prob), CLASSES[:1]), frames).classes["nerve"]
    ref = score(as_model(FixedBackend(prob)), frames).metrics
    assert one["pooled_dice"] == pytest.approx(ref["pooled_dice"])
    assert one["detection_rate"] == pytest.approx(ref["detection_rate"])


def test_parse_classes_gives_the_contract_list():
    assert parse_classes("1,2", "nerve,vessel") == (
        {"id": 1, "name": "nerve", "color": "#ffc800", "safety": False},
        {"id": 2, "name": "vessel", "color": "#ff3030", "safety": True})
    assert nerve_channel(parse_classes("2,1", "vessel,nerve"), 1) == 1
    for ids, names in (("1,1", "a,b"), ("0,2", "a,b"), ("1,2", "nerve"), ("x", None)):
        with pytest.raises(UserInputError):
            parse_classes(ids, names)


def test_folds_are_disjoint_cover_everything_and_do_not_depend_on_the_model():
    samples = [Sample(f"{i}.png", f"{i}.png", str(i), str(i)) for i in range(10)]
    held = [split_fold(samples, 3, k, seed=0)[1] for k in range(3)]
    names = [s.stem for h in held for s in h]
    assert sorted(names) == sorted(s.stem for s in samples)
    train0, held0 = split_fold(samples, 3, 0, seed=0)
    assert not {s.stem for s in train0} & {s.stem for s in held0}
    assert split_fold(samples, 1, 0)[0] == samples  # folds 1: every frame trains
    with pytest.raises(UserInputError):
        split_fold(samples, 3, 3)


def test_load_arrays_gives_one_channel_per_class(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    ids = np.zeros((16, 16), np.uint8)
    ids[0:8, 0:8], ids[8:16, 8:16] = 1, 2
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.full((16, 16), 90, np.uint8))
    cv2.imwrite(str(tmp_path / "masks" / "a.png"), ids)
    s = Sample(str(tmp_path / "images" / "a.png"), str(tmp_path / "masks" / "a.png"), "a", "a")
    _, y = load_arrays([s], PreprocessConfig(input_hw=(8, 8)), class_ids=(2, 1))
    assert y.shape == (1, 8, 8, 2)
    assert y[0, 4:, 4:, 0].all() and not y[0, :4, :4, 0].any()  # channel 0 = id 2
    assert y[0, :4, :4, 1].all() and not y[0, 4:, 4:, 1].any()
    _, nerve = load_arrays([s], PreprocessConfig(input_hw=(8, 8)))
    assert nerve.shape == (1, 8, 8) and np.array_equal(nerve[0], y[0, ..., 1])
