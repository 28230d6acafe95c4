"""edge.model.evaluate.score and edge.model.postprocess.decide: the one evaluator, no TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest

from edge.model.evaluate import LabelledFrames, class_metrics, fp_phrase, score, summarize
from edge.model.metadata import ModelMeta
from edge.model.postprocess import PostprocessConfig, Postprocessor, decide
from edge.model.segmodel import SegModel
from edge.model.settings import resolve

HW = (16, 24)


def as_model(backend, post: PostprocessConfig, classes=None) -> SegModel:
    """A test backend as the model object, with ``post``'s settings (the resolver's way)."""
    meta = ModelMeta(threshold=post.threshold, min_area=post.min_area,
                     presence_threshold=post.presence_threshold, classes=classes)
    return SegModel(backend, resolve(meta, backend.input_hw, backend.input_channels))


class EchoBackend:
    """Probability = pixel / 255 (the input itself); optional constant presence output.
    max_batch > 1 exercises the batched path the Keras backend takes."""

    input_hw, input_channels, name = HW, 1, "echo"

    def __init__(self, presence: float | None = None, max_batch: int = 1):
        self.presence, self.max_batch, self.calls = presence, max_batch, 0

    def run(self, x):
        self.calls += 1
        outs = [np.asarray(x, np.float32)]
        if self.presence is not None:
            outs.insert(0, np.full((len(x), 1), self.presence, np.float32))
        return outs


def frames_with_blobs() -> LabelledFrames:
    """Frame 0: a 20 px nerve + a 2 px speck (min area drops the speck); frame 1: nothing."""
    images = np.zeros((2, *HW), np.uint8)
    images[0, 2:6, 2:7] = 255  # 20 px
    images[0, 12, 20:22] = 255  # 2 px speck, not in the truth
    labels = (images > 0).astype(np.uint8)
    labels[0, 12, 20:22] = 0
    return LabelledFrames(images, labels, ("a", "b"))


def test_decide_is_threshold_min_area_and_presence_gate():
    prob = np.zeros(HW, np.float32)
    prob[2:6, 2:7] = 0.9
    prob[12, 20:22] = 0.9
    cfg = PostprocessConfig(threshold=0.5, min_area=5)
    assert decide(prob, None, cfg).sum() == 20  # speck dropped
    assert decide(prob, 0.9, cfg).sum() == 20
    assert decide(prob, 0.1, cfg).sum() == 0  # presence below 0.5 empties the mask
    assert decide(prob, None, PostprocessConfig(min_area=0)).sum() == 22


def test_postprocessor_decides_like_decide():
    prob = np.zeros(HW, np.float32)
    prob[2:6, 2:7] = 0.9
    prob[12, 20:22] = 0.9
    cfg = PostprocessConfig(min_area=5)
    res = Postprocessor(cfg)([prob[None, :, :, None]], HW)
    np.testing.assert_array_equal(res.mask > 0, decide(prob, None, cfg) > 0)


def test_score_uses_min_area_from_the_config():
    frames = frames_with_blobs()
    with_area = score(as_model(EchoBackend(), PostprocessConfig(min_area=5)), frames)
    without = score(as_model(EchoBackend(), PostprocessConfig(min_area=0)), frames)
    assert with_area.metrics["per_image_dice"] == pytest.approx(1.0)
    assert without.metrics["per_image_dice"] < 1.0  # the speck is a false positive
    assert with_area.metrics["n_images"] == 2 and with_area.metrics["detection_rate"] == 1.0
    np.testing.assert_array_equal(with_area.dice, [1.0, 1.0])


def test_presence_gate_and_batching_give_the_same_masks():
    frames = frames_with_blobs()
    post = PostprocessConfig(min_area=5)
    one = score(as_model(EchoBackend(presence=0.2), post), frames, keep_prob=True)
    assert one.masks.sum() == 0 and one.metrics["detection_rate"] == 0.0
    assert one.presence[:, 0].tolist() == pytest.approx([0.2, 0.2])
    batched = EchoBackend(max_batch=8)
    a = score(as_model(EchoBackend(), post), frames, keep_prob=True)
    b = score(as_model(batched, post), frames, keep_prob=True)
    assert batched.calls == 1
    np.testing.assert_array_equal(a.masks, b.masks)
    np.testing.assert_array_equal(a.prob, b.prob)
    assert a.metrics == b.metrics


def test_one_scorer_names_both_empty_frame_counts():
    """dice_all counts every frame (empty-vs-empty = 1), dice_present only the frames with the
    structure; per_image_dice keeps each figure's meaning: the nerve headline is dice_all, a
    class's figure dice_present."""
    truth = np.zeros((2, *HW), np.uint8)
    truth[0, 2:6, 2:7] = 1
    pred = truth.copy()
    pred[0, 2:4, 2:7] = 0  # half the nerve found on frame 0; frame 1 empty in both
    headline, one_class = summarize(truth, pred), class_metrics(truth, pred)
    assert headline["dice_present"] == pytest.approx(2 * 10 / 30)
    assert headline["dice_all"] == pytest.approx((2 * 10 / 30 + 1.0) / 2)
    assert headline["per_image_dice"] == headline["dice_all"]
    assert one_class["per_image_dice"] == one_class["dice_present"] == headline["dice_present"]
    assert one_class["dice_all"] == headline["dice_all"]


def test_false_positive_rate_counts_the_empty_frames_outlined():
    truth = np.zeros((4, *HW), np.uint8)
    truth[0, 2:6, 2:7] = 1  # one frame with a nerve, three without
    pred = np.zeros_like(truth)
    pred[1, 1:3, 1:3] = 1  # one empty frame outlined
    m = summarize(truth, pred)
    assert m["n_empty_truth"] == 3 and m["false_positive_rate"] == pytest.approx(1 / 3)
    assert class_metrics(truth, pred)["false_positive_rate"] == m["false_positive_rate"]
    assert summarize(truth[:1], pred[:1])["false_positive_rate"] is None
    assert fp_phrase(m) == "false positives 1/3 empty frames (0.3333)"
    assert "no empty frame" in fp_phrase(summarize(truth[:1], pred[:1]))


def test_a_one_class_model_gets_the_headline_and_its_class_figures():
    frames = frames_with_blobs()
    ev = score(as_model(EchoBackend(), PostprocessConfig(min_area=5)), frames)
    assert ev.masks.shape == (*frames.labels.shape, 1)
    assert set(ev.classes) == {"nerve"}
    assert ev.classes["nerve"] == class_metrics(frames.labels, ev.masks[..., 0])
    assert ev.metrics == summarize(frames.labels, ev.masks[..., 0])


def test_evaluator_imports_without_tensorflow():
    import subprocess
    import sys

    code = "import sys, edge.model.evaluate; sys.exit(3 if 'tensorflow' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
