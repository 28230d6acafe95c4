"""The `web` format (convert/web.py): what LiteRT.js in a browser can run. float32 input and
output, every dimension fixed (batch 1), int8 inside, and the same results as int8."""

from __future__ import annotations

import numpy as np
import pytest

from convert import quantize, web
from convert.chain import FORMATS
from convert.validate import INT8_VARIANTS
from edge.fsutil import atomic_write_bytes

MAX_MEAN_DIFF_TO_INT8 = 0.01  # same weights, same calibration: only rounding differs


@pytest.fixture(scope="module")
def web_bytes(tiny_model, tiny_arrays, pre):
    (x, _), _ = tiny_arrays
    return web.to_web(tiny_model, x, pre)


def test_web_is_a_calibrated_tflite_format_under_the_dice_gate():
    assert FORMATS["web"].suffix == ".tflite" and FORMATS["web"].calibrated
    assert "web" in INT8_VARIANTS


def test_web_has_float_io_fixed_batch_and_int8_inside(web_bytes, pre):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=web_bytes)
    for d in (*interp.get_input_details(), *interp.get_output_details()):
        assert d["dtype"] == np.float32
        assert list(d["shape_signature"]) == [1, *pre.input_hw, 1]
    assert any(d["dtype"] == np.int8 for d in interp.get_tensor_details())


def test_fixed_batch_copy_keeps_the_weights(tiny_model, tiny_arrays):
    clone = web.fixed_batch(tiny_model)
    assert clone.input_shape[0] == 1 and tiny_model.input_shape[0] is None
    _, (xv, _) = tiny_arrays
    np.testing.assert_allclose(clone(xv[:1]), tiny_model(xv[:1]), atol=1e-6)


def test_web_matches_int8_in_edge_backend(web_bytes, tiny_model, tiny_arrays, pre, tmp_path):
    from edge.model.backends import TFLiteBackend
    from edge.model.postprocess import split_outputs

    (x, _), (xv, _) = tiny_arrays
    a = TFLiteBackend(atomic_write_bytes(tmp_path / "w.tflite", web_bytes), threads=1)
    b = TFLiteBackend(atomic_write_bytes(tmp_path / "i.tflite",
                                         quantize.to_int8(tiny_model, x, pre)), threads=1)
    diffs = [np.abs(split_outputs(a.run(xv[i:i + 1]))[0] - split_outputs(b.run(xv[i:i + 1]))[0])
             .mean() for i in range(len(xv))]
    assert float(np.mean(diffs)) < MAX_MEAN_DIFF_TO_INT8
