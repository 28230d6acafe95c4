"""Attention U-Net and U-Net++ (edge-train --arch): the device model they hand on, U-Net++ head
pruning, the deep-supervision loss, and int8 TFLite + ONNX exports that run every op on
XNNPACK and agree with the Keras model."""

from __future__ import annotations

import numpy as np
import pytest

import train  # noqa: F401  (tf_keras before TensorFlow)
from convert import onnx_export, quantize
from convert.targets import target_report
from edge.fsutil import atomic_write_bytes
from edge.model.preprocess import PreprocessConfig
from train.losses import DeepSupervisionLoss, MultiBceDiceLoss
from train.model import (
    HEADS_LAYER,
    build_unet,
    count_macs,
    heads_of,
    inference_model,
    select_heads,
)

HW = (32, 48)
TINY = dict(input_hw=HW, base_filters=4, depth=2)
ONNX_TOL = 1e-4
INT8_MEAN_TOL = 0.05  # mean |p_int8 - p_keras|, untrained weights, 8 calibration frames


def _frames(n=8, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, *HW, 1)).astype(np.float32)


@pytest.fixture(scope="module", params=["attention", "unetpp"])
def device_model(request):
    return inference_model(build_unet(arch=request.param, **TINY))


def test_unet_and_attention_models_are_their_own_device_model():
    for arch in ("unet", "attention"):
        m = build_unet(arch=arch, **TINY)
        assert inference_model(m) is m and m.output_names == ["mask"]
        assert m.output_shape == (None, *HW, 1)
    att = build_unet(arch="attention", **TINY)
    assert any(layer.name.endswith("_apply") for layer in att.layers)  # gated skips
    assert count_macs(att) > count_macs(build_unet(**TINY))


def test_unetpp_fit_model_has_one_channel_per_head_and_device_model_averages_them():
    fit = build_unet(arch="unetpp", **TINY)
    assert fit.output_shape == (None, *HW, 2)  # depth 2: heads on X[0][1], X[0][2]
    assert HEADS_LAYER in [layer.name for layer in fit.layers]
    dev = inference_model(fit)
    assert dev.output_names == ["mask"] and dev.output_shape == (None, *HW, 1)
    x = _frames(2)
    heads = fit(x, training=False).numpy()
    np.testing.assert_allclose(dev(x, training=False).numpy()[..., 0], heads.mean(axis=-1),
                               atol=1e-6)
    assert len(heads_of(dev)) == 2  # still prunable after the averaging


def test_select_heads_drops_the_deeper_nodes():
    dev = inference_model(build_unet(arch="unetpp", **TINY))
    first = select_heads(dev, 1)
    assert first.output_names == ["mask"]
    assert count_macs(first) < count_macs(dev)
    assert first.count_params() < dev.count_params()
    with pytest.raises(ValueError, match="heads 1..2"):
        select_heads(dev, 3)
    with pytest.raises(ValueError, match="U-Net\\+\\+ only"):
        select_heads(build_unet(**TINY), 1)


def test_unetpp_without_deep_supervision_trains_the_last_head_only():
    m = build_unet(arch="unetpp", deep_supervision=False, **TINY)
    assert m.output_names == ["mask"] and m.output_shape == (None, *HW, 1)
    with pytest.raises(ValueError, match="presence head"):
        build_unet(arch="unetpp", presence_head=True, **TINY)
    with pytest.raises(ValueError, match="arch must be one of"):
        build_unet(arch="segformer", **TINY)


def test_deep_supervision_loss_is_the_per_head_loss_averaged():
    rng = np.random.default_rng(1)
    y = (rng.uniform(size=(2, *HW, 1)) > 0.7).astype(np.float32)
    p = rng.uniform(0.01, 0.99, (2, *HW, 3)).astype(np.float32)
    per_head = [float(MultiBceDiceLoss()(y, p[..., k:k + 1])) for k in range(3)]
    assert float(DeepSupervisionLoss()(y, p)) == pytest.approx(np.mean(per_head), rel=1e-5)


def test_device_models_export_to_int8_and_onnx_with_every_op_on_xnnpack(device_model,
                                                                      tmp_path):
    pre = PreprocessConfig(input_hw=HW)
    calib = _frames(8)
    path = atomic_write_bytes(tmp_path / "m.tflite", quantize.to_int8(device_model, calib, pre))
    rep = target_report(path)
    assert rep["full_int8"]
    assert rep["targets"]["xnnpack"]["runs_fully"], rep["targets"]["xnnpack"]["unsupported"]
    from edge.model.backends import open_backend

    x = calib[:2]
    out = np.concatenate([open_backend(path).run(f[None])[0] for f in x])  # float32 out
    keras_p = device_model(x, training=False).numpy()
    assert float(np.abs(out.reshape(keras_p.shape) - keras_p).mean()) < INT8_MEAN_TOL
    onnx_path = atomic_write_bytes(tmp_path / "m.onnx", onnx_export.to_onnx(device_model))
    par = onnx_export.parity(device_model, onnx_path, calib)
    assert par["max_abs_diff"] < ONNX_TOL


def test_edge_convert_heads_keeps_the_first_heads_and_refuses_other_models(tmp_path):
    from convert.chain import _keep_heads
    from edge.errors import UserInputError
    from train.modelio import KerasBackend

    dev = inference_model(build_unet(arch="unetpp", **TINY))
    kept = _keep_heads(KerasBackend(dev), 1, log=lambda line: None)
    assert count_macs(kept.model) < count_macs(dev) and kept.model.output_names == ["mask"]
    with pytest.raises(UserInputError, match="U-Net\\+\\+ only"):
        _keep_heads(KerasBackend(build_unet(**TINY)), 1, log=lambda line: None)
