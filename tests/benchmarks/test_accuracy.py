"""accuracy: edge's own pre/post-processing against labels, on tiny data and models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.accuracy import AccuracyConfig, run_accuracy
from edge.errors import UserInputError
from train.config import read_split

METRIC_KEYS = ("per_image_dice", "pooled_dice", "iou", "precision", "recall",
               "detection_rate", "n_images")


def quiet(_line: str) -> None:
    pass


def test_identity_model_scores_perfectly(identity_onnx, tiny_dataset):
    """Frames equal to their masks through an identity model: Dice must be exactly 1."""
    doc = run_accuracy([identity_onnx], AccuracyConfig(data_dir=str(tiny_dataset["data"])),
                       progress=quiet)
    (row,) = doc["results"]
    assert row["status"] == "ok", row.get("error")
    assert row["n_images"] == 4
    for key in ("per_image_dice", "pooled_dice", "iou", "precision", "recall",
                "detection_rate"):
        assert row[key] == pytest.approx(1.0), key


def test_split_selects_val_subjects(tiny_models, tiny_dataset, broken_model):
    cfg = AccuracyConfig(data_dir=str(tiny_dataset["data"]), split=str(tiny_dataset["split"]))
    models = [tiny_models["tflite_int8"], tiny_models["keras"], broken_model]
    doc = run_accuracy(models, cfg, progress=quiet)
    assert doc["dataset"]["subjects"] == ["2"] and doc["dataset"]["n_images"] == 2
    int8_row, keras_row, bad = doc["results"]
    for row in (int8_row, keras_row):
        assert row["status"] == "ok", row.get("error")
        assert set(METRIC_KEYS) <= set(row)
        assert 0.0 <= row["per_image_dice"] <= 1.0
    assert bad["status"] == "failed" and "broken.tflite" in bad["error"]


def test_bad_split_is_a_user_error(tmp_path, tiny_dataset):
    bad = tmp_path / "split.json"
    bad.write_text(json.dumps({"train_subjects": ["1"]}))
    with pytest.raises(UserInputError, match="val_subjects"):
        read_split(bad)
    with pytest.raises(UserInputError, match="no frame"):
        run_accuracy([], AccuracyConfig(data_dir=str(tiny_dataset["data"]),
                                        subjects=("99",)), progress=quiet)


def test_real_kaggle_frames(kaggle_train, tiny_models):
    cfg = AccuracyConfig(data_dir=str(kaggle_train), max_images=3)
    (row,) = run_accuracy([tiny_models["onnx"]], cfg, progress=quiet)["results"]
    assert row["status"] == "ok", row.get("error")
    assert row["n_images"] == 3


def test_presence_output_below_threshold_empties_masks(tmp_path, tiny_dataset):
    """A model whose presence head says 'no nerve' must predict nothing, even though its
    mask output (the identity) is perfect."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edge.model.metadata import ModelMeta, write_meta

    hw = [1, 16, 24, 1]
    zero = numpy_helper.from_array(np.zeros((1, 1), np.float32), "zero")
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["mask"]),
         helper.make_node("Identity", ["zero"], ["presence"])], "presence",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, hw)],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, hw),
         helper.make_tensor_value_info("presence", TensorProto.FLOAT, [1, 1])], [zero])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "presence.onnx"
    onnx.save(model, str(path))
    write_meta(path, ModelMeta(input_hw=(16, 24), presence_threshold=0.5))
    doc = run_accuracy([path], AccuracyConfig(data_dir=str(tiny_dataset["data"])),
                       progress=quiet)
    (row,) = doc["results"]
    assert row["status"] == "ok", row.get("error")
    assert row["detection_rate"] == 0.0 and row["per_image_dice"] == 0.0
