"""train.label.brush speaks Label Studio's brush RLE: the same bytes as label-studio-sdk."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from tests.label.lsserver import LS_PYTHON
from train.label.brush import decode, encode, mask_to_rle, rle_to_mask


def _masks():
    rng = np.random.default_rng(0)
    blob = np.zeros((48, 64), np.uint8)
    blob[10:30, 20:50] = 255
    noisy = (rng.random((20, 30)) > 0.7).astype(np.uint8) * 255
    big = np.zeros((300, 300), np.uint8)  # runs over 2**16 values
    big[290:, :10] = 255
    return [blob, noisy, np.zeros((5, 7), np.uint8), big]


def test_round_trip():
    for m in _masks():
        assert np.array_equal(rle_to_mask(mask_to_rle(m), *m.shape), m > 0)
    values = np.array([0, 0, 0, 5, 6, 7, 7, 200] * 40 + [1] * 70000, np.uint8)
    assert np.array_equal(decode(encode(values)), values)


def test_same_bytes_as_label_studio_sdk():
    if not LS_PYTHON.exists():
        pytest.skip(f"Label Studio's venv {LS_PYTHON.parent.parent} is missing: make labelstudio")
    masks = _masks()
    code = ("import json, sys, numpy as np\n"
            "from label_studio_sdk.converter.brush import mask2rle, decode_rle\n"
            "ms = json.load(sys.stdin)\n"
            "out = [mask2rle(np.array(m, np.uint8)) for m in ms]\n"
            "back = [decode_rle(r).tolist()[3::4] for r in out]\n"
            "print(json.dumps([out, back]))\n")
    proc = subprocess.run([str(LS_PYTHON), "-c", code], input=json.dumps(
        [m.tolist() for m in masks]), capture_output=True, text=True, timeout=300, check=True)
    theirs, their_alpha = json.loads(proc.stdout)
    for m, rle, alpha in zip(masks, theirs, their_alpha, strict=True):
        assert mask_to_rle(m) == rle
        assert np.array_equal(rle_to_mask(rle, *m.shape), np.array(alpha).reshape(m.shape) > 0)
