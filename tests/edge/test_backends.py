"""Both backends on the packaged fixtures; quantization with hand-made parameters; bad models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.errors import ModelError
from edge.io.phantom import phantom_pair
from edge.model.backends import (
    OnnxBackend,
    TFLiteBackend,
    backend_kind,
    dequantize,
    open_backend,
    quantize,
)
from edge.model.metadata import load_meta
from edge.model.postprocess import PostprocessConfig, binarize, split_outputs
from edge.model.preprocess import PreprocessConfig, frame_to_gray_input, mask_to_input, normalize

MODELS = Path(__file__).parents[2] / "edge" / "models"
TFLITE = MODELS / "nerve_fixture_int8.tflite"
ONNX = MODELS / "nerve_fixture.onnx"
BAD_NCHW = Path(__file__).parent / "fixtures" / "bad_input_nchw.onnx"
FRAMES = (7, 101, 333)  # phantom frames at different nerve positions
PROB_ATOL = 0.1  # int8 vs float probability: a few quantization steps of 1/256 through a U-Net
DICE_MIN = 0.9


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return 2.0 * (a & b).sum() / max(a.sum() + b.sum(), 1)


@pytest.fixture(scope="module")
def backends():
    return open_backend(TFLITE, threads=1), open_backend(ONNX, threads=1)


def _inputs(index: int, pcfg: PreprocessConfig):
    frame, mask = phantom_pair(index)
    gray = frame_to_gray_input(frame, pcfg)
    return gray, normalize(gray, pcfg), mask_to_input(mask, pcfg)


def test_suffix_picks_the_backend_and_attributes(backends):
    tfl, onx = backends
    assert isinstance(tfl, TFLiteBackend) and isinstance(onx, OnnxBackend)
    assert tfl.input_hw == onx.input_hw == (128, 176)
    assert tfl.input_channels == onx.input_channels == 1
    assert tfl.input_dtype == np.int8 and onx.input_dtype == np.float32
    assert tfl.name.startswith("tflite(") and onx.name == "onnx(CPUExecutionProvider)"
    assert tfl.threads == 1 and tfl.model_path == TFLITE
    assert backend_kind("m.onnx", "tflite") == "tflite"


def test_int8_tflite_matches_float_onnx_on_phantom(backends):
    tfl, onx = backends
    pcfg = PreprocessConfig(input_hw=tfl.input_hw)
    cfg = PostprocessConfig(threshold=0.5)
    for index in FRAMES:
        _, x, truth = _inputs(index, pcfg)
        p_int8 = split_outputs(tfl.run(x))[0][..., 0]
        p_float = split_outputs(onx.run(x))[0][..., 0]
        assert p_int8.dtype == np.float32 and p_int8.shape == (128, 176)
        assert np.abs(p_int8 - p_float).mean() < PROB_ATOL / 4
        assert np.percentile(np.abs(p_int8 - p_float), 99) < PROB_ATOL
        m_int8, m_float = binarize(p_int8, cfg), binarize(p_float, cfg)
        assert dice(m_int8, m_float) > DICE_MIN
        assert dice(m_float, truth) > DICE_MIN - 0.1  # the fixture really finds the phantom nerve


def test_gray8_fast_path_equals_general_quantization(backends):
    tfl, _ = backends
    assert tfl.is_gray8_exact
    pcfg = PreprocessConfig(input_hw=tfl.input_hw)
    gray, x, _ = _inputs(FRAMES[0], pcfg)
    fast = tfl.run_gray8(gray)[0]
    general = tfl.run(x)[0]
    np.testing.assert_array_equal(fast, general)


def test_quantize_with_hand_made_params():
    x = np.array([[-1.0, 0.0, 0.1, 0.5, 0.999, 2.0]], np.float32)
    q = quantize(x, scale=0.01, zero_point=-20, out=np.empty(x.shape, np.int8))
    np.testing.assert_array_equal(q, [[-120, -20, -10, 30, 80, 127]])  # 2.0 clips to 127
    u = quantize(x, scale=1 / 255, zero_point=0, out=np.empty(x.shape, np.uint8))
    np.testing.assert_array_equal(u, [[0, 0, 26, 128, 255, 255]])  # rint(127.5) = 128
    np.testing.assert_allclose(dequantize(np.array([-128, 0, 127], np.int8), 0.5, -28),
                               [-50.0, 14.0, 77.5])


def test_unavailable_onnx_provider_lists_available():
    expected = "CUDAExecutionProvider not available.*available: .*CPUExecutionProvider"
    with pytest.raises(ModelError, match=expected):
        open_backend(ONNX, providers=["CUDAExecutionProvider"])


def test_missing_model(tmp_path):
    with pytest.raises(ModelError, match="does not exist.*--model"):
        open_backend(tmp_path / "nope.tflite")


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_text_file_is_not_a_model(tmp_path, suffix):
    fake = tmp_path / f"model{suffix}"
    fake.write_text("not a model\n")
    with pytest.raises(ModelError, match=f"{fake}.*not a valid"):
        open_backend(fake)


def test_unknown_suffix(tmp_path):
    with pytest.raises(ModelError, match="--backend"):
        open_backend(tmp_path / "model.pb")


def test_nchw_input_is_refused_naming_the_shape():
    with pytest.raises(ModelError) as err:
        open_backend(BAD_NCHW)
    message = str(err.value)
    assert "expects 1x128x176x1 float32" in message
    assert "got input 1x3x128x176 (NCHW?)" in message and "NHWC" in message


def test_fixture_sidecars_describe_the_models():
    for path in (TFLITE, ONNX):
        meta = load_meta(path)
        assert meta.input_hw == (128, 176) and meta.threshold == 0.5
        assert "fixture" in meta.extra["note"] and meta.sha256


def test_a_model_without_a_mask_output_is_refused_at_open():
    no_mask = Path(__file__).parent / "fixtures" / "no_mask_output.onnx"
    with pytest.raises(ModelError, match="no_mask_output.onnx has no 1xHxWx1 mask output "
                                         r"\(outputs: 1x10\)"):
        open_backend(no_mask)
