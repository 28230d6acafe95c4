"""Each conversion step alone on the tiny trained U-Net: prune, quantize, ONNX, targets."""

from __future__ import annotations

import numpy as np
import pytest

from convert import onnx_export, quantize
from convert.prune import PruneConfig, is_prunable, prune_model, sparsity_report, sparsity_table
from convert.targets import report_markdown, target_report
from edge.errors import UserInputError
from edge.fsutil import atomic_write_bytes

SPARSITY_TOL = 0.02
INT8_MEAN_TOL = 0.03  # mean |p_int8 - p_float| on a well-calibrated tiny model
ONNX_TOL = 1e-4


@pytest.fixture(scope="module")
def pruned(tiny_model, tiny_arrays):
    (x, y), _ = tiny_arrays
    before = [w.copy() for w in tiny_model.get_weights()]
    model = prune_model(tiny_model, x, y, PruneConfig(target_sparsity=0.5, epochs=1))
    return model, before


def test_pruning_reaches_target_on_prunable_kernels(pruned):
    model, _ = pruned
    rep = sparsity_report(model)
    assert abs(rep["pruned_sparsity"] - 0.5) <= SPARSITY_TOL
    for row in rep["layers"]:
        if row["prunable"]:
            assert abs(row["sparsity"] - 0.5) <= SPARSITY_TOL, row
    kept = [r for r in rep["layers"] if not r["prunable"]]
    assert kept and all(r["sparsity"] < 0.5 for r in kept)  # tiny stem/logits left dense
    assert "not faster" in sparsity_table(rep)


def test_pruning_leaves_the_source_model_untouched(pruned, tiny_model):
    _, before = pruned
    for a, b in zip(before, tiny_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_only_conv_and_dense_kernels_are_prunable(tiny_model):
    kinds = {type(layer).__name__ for layer in tiny_model.layers if is_prunable(layer, 1)}
    assert kinds == {"Conv2D"}


@pytest.fixture(scope="module")
def int8_bytes(tiny_model, tiny_arrays, pre):
    (x, _), _ = tiny_arrays
    return quantize.to_int8(tiny_model, x, pre)


def test_int8_input_is_pixel_minus_128(int8_bytes, pre):
    q = quantize.check_input_quant(int8_bytes, pre)
    assert q["dtype"] == "int8" and q["zero_point"] == -128 and q["ok"] is True
    assert q["scale"] == pytest.approx(1 / 255, rel=0.02)


def test_int8_runs_in_edge_backend_close_to_float(int8_bytes, tiny_model, tiny_arrays, pre,
                                                  tmp_path):
    from edge.model.backends import TFLiteBackend
    from edge.model.postprocess import split_outputs

    path = atomic_write_bytes(tmp_path / "m.tflite", int8_bytes)
    backend = TFLiteBackend(path, threads=1)
    assert backend.input_hw == pre.input_hw and backend.input_dtype == np.int8
    _, (xv, _) = tiny_arrays
    ref = tiny_model.predict(xv, verbose=0)[..., 0]
    got = np.stack([split_outputs(backend.run(xv[i : i + 1]))[0][..., 0] for i in range(len(xv))])
    assert np.abs(got - ref).mean() < INT8_MEAN_TOL


def test_empty_calibration_is_a_clear_error(tiny_model, pre):
    with pytest.raises(UserInputError, match="calibration"):
        quantize.to_int8(tiny_model, np.zeros((0, *pre.input_hw, 1), np.float32), pre)


def test_onnx_parity_and_dynamic_batch(tiny_model, tiny_arrays, tmp_path):
    import onnxruntime as ort

    path = atomic_write_bytes(tmp_path / "m.onnx", onnx_export.to_onnx_bytes(tiny_model))
    _, (xv, _) = tiny_arrays
    par = onnx_export.parity(tiny_model, path, xv)
    assert par["frames"] == onnx_export.PARITY_FRAMES and par["max_abs_diff"] < ONNX_TOL
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].name == "image"
    assert sess.run(None, {"image": xv[:3]})[0].shape == (3, *xv.shape[1:])


def test_target_report_flags_transpose_conv_for_edge_tpu(transpose_model, tmp_path):
    path = atomic_write_bytes(tmp_path / "t.tflite", quantize.to_fp32(transpose_model))
    rep = target_report(path)
    assert "TRANSPOSE_CONV" in rep["ops"]
    assert "TRANSPOSE_CONV" in rep["targets"]["edgetpu"]["unsupported"]
    assert "TRANSPOSE_CONV" not in rep["targets"]["xnnpack"]["unsupported"]
    assert "TRANSPOSE_CONV" in report_markdown([rep])
    assert not rep["full_int8"] and not rep["targets"]["edgetpu"]["runs_fully"]


def test_target_report_bilinear_int8_fits_edge_tpu(int8_bytes, tmp_path):
    rep = target_report(atomic_write_bytes(tmp_path / "b.tflite", int8_bytes))
    assert rep["full_int8"] and "TRANSPOSE_CONV" not in rep["ops"]
    assert all(t["runs_fully"] for t in rep["targets"].values()), rep["targets"]
