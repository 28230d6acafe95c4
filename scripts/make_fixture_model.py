"""Build the fixture models that edge-run uses until the trained model ships.

A small U-Net (train.model.build_unet) is trained for about a minute on the synthetic phantom
(edge.io.phantom.phantom_pair), so the fixture really outlines the phantom nerve, then exported:

    edge/models/nerve_fixture_int8.tflite (+ .json)   full-integer int8 (int8 input and output)
    edge/models/nerve_fixture.onnx        (+ .json)   float32, input "image" (N, 128, 176, 1)
    tests/edge/fixtures/bad_input_nchw.onnx           a 1x3x128x176 (NCHW) input: for the
                                                      "wrong input shape" test (no onnx needed
                                                      in the device venv)
    tests/edge/fixtures/no_mask_output.onnx           a (1, 10) output and no mask: for the
                                                      "not a segmentation model" test

Needs the [convert] extra (TensorFlow, tf2onnx, onnx):

    .venv/bin/python scripts/make_fixture_model.py [--budget-s 90]

Seeded; TensorFlow's CPU kernels are not bit-exact across machines, so rebuilt files differ
slightly but behave the same.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import train  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

# isort: split
import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402

from convert.onnx_export import to_onnx_bytes  # noqa: E402
from convert.quantize import to_int8  # noqa: E402
from edge.io.phantom import phantom_pair  # noqa: E402
from edge.model.metadata import ModelMeta, write_meta  # noqa: E402
from edge.model.preprocess import PreprocessConfig, mask_to_input, preprocess  # noqa: E402
from train.losses import BceDiceLoss  # noqa: E402
from train.model import build_unet  # noqa: E402

MODELS = ROOT / "edge" / "models"
TFLITE_PATH = MODELS / "nerve_fixture_int8.tflite"
ONNX_PATH = MODELS / "nerve_fixture.onnx"
BAD_ONNX_PATH = ROOT / "tests" / "edge" / "fixtures" / "bad_input_nchw.onnx"
NO_MASK_ONNX_PATH = ROOT / "tests" / "edge" / "fixtures" / "no_mask_output.onnx"
NO_MASK_SCORES = 10  # a classifier-like (1, 10) output
INPUT_HW = (128, 176)
BASE_FILTERS = 8  # tiny: the fixture must stay < 300 KB and train in a minute on 2 cores
DEPTH = 3
MAX_FILTERS = 24  # caps the deeper levels: the float ONNX stays < 300 KB
TRAIN_FRAMES = 192
FRAME_STEP = 5  # phantom frames apart: the oval moves slowly, spread the positions
CALIB_FRAMES = 64
BATCH = 16
LEARNING_RATE = 3e-3
MAX_EPOCHS = 60
MIN_AREA = 20  # model-input pixels: drops speckle blobs, far below the nerve's ~400 px
ONNX_OPSET = 17
SEED = 0
FILE_MODE = 0o644
NOTE = "fixture trained on the synthetic phantom; replace with the trained model"


class TimeBudget(keras.callbacks.Callback):
    """Stop training after budget_s seconds (checked at epoch end)."""

    def __init__(self, budget_s: float):
        super().__init__()
        self.budget_s = budget_s
        self.t0 = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() - self.t0 > self.budget_s:
            self.model.stop_training = True


def phantom_dataset(n: int, start: int, pcfg: PreprocessConfig):
    xs, ys = [], []
    for i in range(n):
        frame, mask = phantom_pair(start + i * FRAME_STEP)
        xs.append(preprocess(frame, pcfg)[0])
        ys.append(mask_to_input(mask, pcfg)[:, :, None].astype(np.float32))
    return np.stack(xs), np.stack(ys)


def train_model(budget_s: float, pcfg: PreprocessConfig):
    keras.utils.set_random_seed(SEED)
    x, y = phantom_dataset(TRAIN_FRAMES, 0, pcfg)
    model = build_unet(input_hw=INPUT_HW, base_filters=BASE_FILTERS, depth=DEPTH,
                       stem_stride=2, max_filters=MAX_FILTERS, name="nerve_fixture")
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss=BceDiceLoss())
    model.fit(x, y, batch_size=BATCH, epochs=MAX_EPOCHS, shuffle=True, verbose=2,
              callbacks=[TimeBudget(budget_s)])
    xv, yv = phantom_dataset(16, 3, pcfg)  # offset frames: not in the training set
    pred = model.predict(xv, verbose=0) > 0.5
    dice = 2 * (pred & (yv > 0)).sum() / max(pred.sum() + (yv > 0).sum(), 1)
    print(f"held-out phantom Dice (float): {dice:.3f}")
    return model, float(dice)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600 files; models are read by everyone
    os.replace(tmp, path)


def calibration_frames(pcfg: PreprocessConfig) -> np.ndarray:
    """Phantom frames through edge.model.preprocess, exactly like on the device."""
    frames = [phantom_pair(1000 + i * FRAME_STEP)[0] for i in range(CALIB_FRAMES)]
    return np.concatenate([preprocess(f, pcfg) for f in frames])


def bad_nchw_onnx() -> bytes:
    """An Identity model with a 1x3x128x176 input: what a PyTorch-style export looks like."""
    import onnx
    from onnx import TensorProto, helper

    shape = [1, 3, *INPUT_HW]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["mask"])],
        "bad_input_nchw",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    model.ir_version = 8  # readable by every onnxruntime >= 1.10
    onnx.checker.check_model(model)
    return model.SerializeToString()


def no_mask_output_onnx() -> bytes:
    """A valid NHWC 1x128x176x1 input but only a (1, 10) output: a classifier exported by
    mistake. Flatten then keep the first NO_MASK_SCORES values."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
         helper.make_node("Slice", ["flat", "starts", "ends", "axes"], ["scores"])],
        "no_mask_output",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, *INPUT_HW, 1])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, NO_MASK_SCORES])],
        initializer=[helper.make_tensor(name, TensorProto.INT64, [1], [value])
                     for name, value in (("starts", 0), ("ends", NO_MASK_SCORES), ("axes", 1))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget-s", type=float, default=90.0, help="training time budget (s)")
    args = ap.parse_args(argv)
    pcfg = PreprocessConfig(input_hw=INPUT_HW)
    model, dice = train_model(args.budget_s, pcfg)
    meta = ModelMeta(
        name="nerve_fixture", version="0.1", input_hw=INPUT_HW, scale=pcfg.scale,
        offset=pcfg.offset, threshold=0.5, min_area=MIN_AREA,
        extra={"note": NOTE, "phantom_dice_float": round(dice, 4),
               "architecture": f"build_unet(base_filters={BASE_FILTERS}, depth={DEPTH}, "
                               f"stem_stride=2, max_filters={MAX_FILTERS})"},
    )
    atomic_write_bytes(TFLITE_PATH, to_int8(model, calibration_frames(pcfg), pcfg))
    atomic_write_bytes(ONNX_PATH, to_onnx_bytes(model))
    for path in (TFLITE_PATH, ONNX_PATH):
        os.chmod(write_meta(path, meta), FILE_MODE)
    atomic_write_bytes(BAD_ONNX_PATH, bad_nchw_onnx())
    atomic_write_bytes(NO_MASK_ONNX_PATH, no_mask_output_onnx())
    for p in (TFLITE_PATH, ONNX_PATH, BAD_ONNX_PATH, NO_MASK_ONNX_PATH):
        print(f"wrote {p.relative_to(ROOT)} ({p.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
