"""Rebuild a float tf_keras model of a shipped U-Net from its float ONNX export.

The shipped model's Keras weights are not in the repo, but the float ONNX file
(edge/models/nerve_default.onnx, written by edge-convert from the pruned Keras model) holds
every weight. tf2onnx folded each batch norm into the conv before it and named the
initializers after the Keras layers (``unet/<layer>/Conv2D_weights_fused_bn``), so:

  * the network is rebuilt with train.model.build_unet and the shipped architecture flags
    (MODEL_CARD.md: base filters 12, depth 3, stem stride 2, bilinear upsampling);
  * each ``<layer>_conv`` gets the folded kernel (ONNX OIHW -> Keras HWIO) and the batch norm
    after it becomes a pure bias: mean 0, variance 1, gamma sqrt(1 + eps), beta = folded bias;
  * the result is checked against ONNX Runtime on real frames (max |p_keras - p_onnx|, must
    stay under --tolerance) before it is written.

    .venv/bin/python scripts/keras_from_onnx.py --run-dir runs/b12-web \\
        --frames DATA/kaggle-nerve/train
    .venv/bin/edge-convert runs/b12-web --out runs/b12-web/export --formats web,int8 --prune 0

--run-dir writes an edge-train-style run folder (model.keras, config.json, split.json) whose
subject split and post-processing come from the ONNX file's sidecar, so edge-convert
calibrates on the same training subjects and gates on the same validation subjects as the
shipped model (no second pruning: the weights are already 50% sparse).

The .keras file is a build product (runs/ is gitignored): never commit it. Needs the
[convert] extra (TensorFlow, onnx, onnxruntime).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import train  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

# isort: split
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from edge.fsutil import write_json_atomic  # noqa: E402
from edge.model.metadata import load_meta  # noqa: E402
from edge.model.preprocess import PreprocessConfig, preprocess  # noqa: E402
from train.config import DEFAULT_MODEL  # noqa: E402
from train.model import build_unet  # noqa: E402

DEFAULT_ONNX = ROOT / "edge" / "models" / "nerve_default.onnx"
DEFAULT_DEPTH = 3  # MODEL_CARD.md: the shipped architecture
DEFAULT_STEM_STRIDE = 2
DEFAULT_TOLERANCE = 1e-4  # max |p| difference to ONNX Runtime; float32 reorderings give ~1e-6
CHECK_FRAMES = 32  # real frames compared against ONNX Runtime
KERNEL_SUFFIX = "/Conv2D_weights_fused_bn"
BIAS_SUFFIX = "/Conv2D_bias_fused_bn"
LOGITS_KERNEL = "unet/logits/Conv2D/ReadVariableOp:0"
LOGITS_BIAS = "unet/logits/BiasAdd/ReadVariableOp:0"


def onnx_weights(path: Path) -> dict[str, np.ndarray]:
    """Initializer name -> array."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def conv_layers(weights: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Keras conv layer name -> (HWIO kernel, bias) of every BN-folded conv."""
    out = {}
    for name, kernel in weights.items():
        if name.endswith(KERNEL_SUFFIX):
            layer = name[: -len(KERNEL_SUFFIX)].split("/")[-1]
            bias = weights[name[: -len(KERNEL_SUFFIX)] + BIAS_SUFFIX]
            out[layer] = (kernel.transpose(2, 3, 1, 0), bias)
    return out


def architecture(base: int, depth: int, stem_stride: int) -> dict:
    """The build_unet kwargs of the rebuild, as edge-train's config.json "model" dict holds
    them (--init-weights and edge-train export-init read the architecture there)."""
    return {**DEFAULT_MODEL, "base_filters": base, "depth": depth, "stem_stride": stem_stride,
            "upsample": "bilinear"}


def build_from_onnx(path: Path, depth: int, stem_stride: int):
    """A build_unet model carrying the ONNX file's weights (raises ValueError on a mismatch)."""
    weights = onnx_weights(path)
    convs = conv_layers(weights)
    first = "stem_conv" if stem_stride == 2 else "enc0_0_conv"
    base = convs[first][0].shape[-1]  # output channels of the first conv
    meta = load_meta(path)
    model = build_unet(input_hw=meta.input_hw, **architecture(int(base), depth, stem_stride))
    used = set()
    for layer in model.layers:
        if layer.name in convs:
            kernel, bias = convs[layer.name]
            _set(layer, [kernel])
            bn = model.get_layer(layer.name[: -len("_conv")] + "_bn")
            eps = bn.epsilon
            _set(bn, [np.full_like(bias, np.sqrt(1.0 + eps)), bias,
                      np.zeros_like(bias), np.ones_like(bias)])
            used.add(layer.name)
    logits = model.get_layer("logits")
    _set(logits, [weights[LOGITS_KERNEL].transpose(2, 3, 1, 0), weights[LOGITS_BIAS]])
    missing = sorted(set(convs) - used)
    if missing:
        raise ValueError(f"{path}: ONNX convs {missing} have no layer in build_unet(base={base}, "
                         f"depth={depth}, stem_stride={stem_stride}); check the flags")
    return model


def _set(layer, arrays: list[np.ndarray]) -> None:
    want = [w.shape for w in layer.get_weights()]
    got = [a.shape for a in arrays]
    if want != got:
        raise ValueError(f"layer {layer.name}: expects {want}, the ONNX file gives {got}")
    layer.set_weights([a.astype(np.float32) for a in arrays])


def real_inputs(frames_dir: Path, pre: PreprocessConfig, count: int) -> np.ndarray:
    """(N,H,W,1) inputs of the first ``count`` image files (masks skipped).

    Via edge.model.preprocess."""
    files = sorted(p for p in frames_dir.iterdir()
                   if p.suffix.lower() in (".png", ".jpg", ".tif") and "_mask" not in p.stem)
    if not files:
        raise ValueError(f"--frames {frames_dir}: no image files")
    step = max(1, len(files) // count)
    return np.concatenate([preprocess(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), pre)
                           for f in files[::step][:count]])


def max_difference(model, onnx_path: Path, x: np.ndarray) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    ref = np.concatenate([sess.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])
    got = np.asarray(model(x, training=False))
    return float(np.abs(got - ref).max())


def base_filters(model) -> int:
    first = "stem_conv" if "stem_conv" in {layer.name for layer in model.layers} else "enc0_0_conv"
    return int(model.get_layer(first).filters)


def write_run_dir(run_dir: Path, model, onnx_path: Path, frames_dir: Path, depth: int,
                  stem_stride: int) -> None:
    """model.keras + config.json + split.json, as edge-convert reads a run folder."""
    meta = load_meta(onnx_path)
    data = meta.extra.get("training_data", {})
    if not data.get("val_subjects"):
        raise ValueError(f"{onnx_path}: its sidecar has no training_data.val_subjects")
    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(run_dir / "model.keras")
    config = {"data": str(frames_dir), "layout": data.get("layout"),
              "input_hw": list(meta.input_hw), "roi": meta.extra.get("roi"),
              "scale": meta.scale, "offset": meta.offset, "threshold": meta.threshold,
              "min_area": meta.min_area, "presence_threshold": meta.presence_threshold,
              "model": architecture(base_filters(model), depth, stem_stride),
              "n_train_frames": data.get("n_train_frames"),
              "n_val_frames": data.get("n_val_frames"), "seed": data.get("seed", 0),
              "rebuilt_from": str(onnx_path)}
    split = {"train_subjects": data["train_subjects"], "val_subjects": data["val_subjects"],
             "seed": data.get("seed")}
    write_json_atomic(run_dir / "config.json", config)
    write_json_atomic(run_dir / "split.json", split)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--onnx", type=Path, default=DEFAULT_ONNX, help="float ONNX export")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", type=Path, help="the .keras file to write")
    out.add_argument("--run-dir", type=Path, help="write a run folder for edge-convert")
    p.add_argument("--frames", type=Path, required=True,
                   help="folder of real frames to check the rebuild on (e.g. kaggle-nerve/train)")
    p.add_argument("--depth", type=int, default=DEFAULT_DEPTH)
    p.add_argument("--stem-stride", type=int, default=DEFAULT_STEM_STRIDE)
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    args = p.parse_args(argv)
    model = build_from_onnx(args.onnx, args.depth, args.stem_stride)
    meta = load_meta(args.onnx)
    pre = PreprocessConfig(input_hw=meta.input_hw, scale=meta.scale, offset=meta.offset)
    diff = max_difference(model, args.onnx, real_inputs(args.frames, pre, CHECK_FRAMES))
    print(f"keras_from_onnx: max |p_keras - p_onnx| = {diff:.2e} on {CHECK_FRAMES} real frames")
    if diff > args.tolerance:
        print(f"keras_from_onnx: above --tolerance {args.tolerance}; nothing written",
              file=sys.stderr)
        return 1
    if args.run_dir:
        write_run_dir(args.run_dir, model, args.onnx, args.frames, args.depth, args.stem_stride)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        model.save(args.out)
    print(f"keras_from_onnx: wrote {args.run_dir or args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
