"""edge-convert validate applies the Dice floor to int8 models known by their tensors, not by
their file name: docs/convert.md's `quantize ... --out m.tflite --variant int8` then
`validate runs/base16 m.tflite m.onnx` must meet the floor (found by tests/docs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("ai_edge_litert")

from convert.quantize import has_int8_tensors  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_an_int8_model_is_int8_whatever_its_name(tmp_path):
    renamed = tmp_path / "m.tflite"
    shutil.copy(ROOT / "edge/models/nerve_default_int8.tflite", renamed)
    assert has_int8_tensors(renamed)


def test_float_models_and_onnx_are_not_int8():
    assert not has_int8_tensors(ROOT / "tests/edge/fixtures/two_class_float.tflite")
    assert not has_int8_tensors(ROOT / "edge/models/nerve_default.onnx")
