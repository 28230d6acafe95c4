"""The model sidecar (edge/model/metadata.py): the shipped ones are valid and match their models;
broken ones are one-line ModelErrors naming the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.errors import ModelError
from edge.model.metadata import (
    ModelMeta,
    check_sha256,
    load_meta,
    meta_from_dict,
    sha256_file,
    sidecar_path,
)

MODELS = Path(__file__).parents[2] / "edge" / "models"
SHIPPED = sorted(p for p in MODELS.iterdir() if p.suffix in (".tflite", ".onnx"))


@pytest.mark.parametrize("model", SHIPPED, ids=lambda p: p.name)
def test_shipped_sidecars_are_valid_and_match_their_models(model):
    assert sidecar_path(model).is_file()
    meta = load_meta(model)
    assert meta.sha256 == sha256_file(model)
    assert check_sha256(model, meta) == (meta.sha256, "ok")


def test_valid_values_are_read_with_their_types():
    meta = meta_from_dict({"name": "n", "version": 3, "input_hw": [96, 128], "scale": 0.5,
                           "offset": -1, "threshold": 0.4, "min_area": 0,
                           "presence_threshold": 0, "note": "kept", "extra": {"a": 1}})
    assert meta.version == "3" and meta.input_hw == (96, 128) and meta.offset == -1
    assert meta.extra == {"a": 1, "note": "kept"}
    assert meta_from_dict({"threshold": None}).threshold == ModelMeta().threshold  # default


@pytest.mark.parametrize("data, field", [
    ({"min_area": True}, "min_area"),  # a bool is not a pixel count
    ({"min_area": 2.5}, "min_area"),
    ({"threshold": 0}, "threshold"),
    ({"threshold": float("nan")}, "threshold"),  # json.loads accepts NaN
    ({"presence_threshold": 2}, "presence_threshold"),
    ({"scale": -0.1}, "scale"),
    ({"input_hw": [128, 176, 1]}, "input_hw"),
    ({"input_hw": "128x176"}, "input_hw"),
    ({"name": 7}, "name"),
    ({"extra": [1]}, "extra"),
    ({"sha256": "A" * 64}, "sha256"),
])
def test_bad_fields_name_the_field_and_the_file(data, field):
    with pytest.raises(ModelError, match=f"sidecar m.json: field '{field}' is .*; expected"):
        meta_from_dict(data, where="sidecar m.json")


def test_sha256_mismatch_is_refused_unless_allowed(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"model bytes")
    sidecar_path(model).write_text(json.dumps({"sha256": "0" * 64}))
    meta = load_meta(model)
    with pytest.raises(ModelError, match="m.tflite: sha256 .* does not match its sidecar.*"
                                         "--allow-sha256-mismatch"):
        check_sha256(model, meta)
    assert check_sha256(model, meta, allow_mismatch=True) == (sha256_file(model), "mismatch")
    assert check_sha256(model, ModelMeta())[1] == "no sha256 in the sidecar"


def test_a_folder_named_like_the_sidecar_is_a_clear_error(tmp_path):
    model = tmp_path / "m.onnx"
    sidecar_path(model).mkdir()
    with pytest.raises(ModelError, match="sidecar .*m.json: cannot read it"):
        load_meta(model)
