"""edge-train: train a nerve segmentation model, or evaluate one (`edge-train eval`).

argparse lives here only; the library takes TrainConfig / EvalConfig. Exit codes: 0 ok,
2 bad input (one line, no traceback), 1 runtime failure.
"""

from __future__ import annotations

import argparse
import sys

TRAIN_EXAMPLES = """examples:
  edge-train --data ../shared/data/kaggle-nerve/train --out runs/unet
  edge-train --data ../shared/data/kaggle-nerve/train --out runs/ref --preset reference
  edge-train --data DATA --out runs/unet --resume                 # continue after a kill
  edge-train --data ../shared/data/usgra-seg --layout folder --nerve-class 1 \\
             --init-weights runs/unet/model.keras --out runs/clinic --epochs 20 --lr 5e-4
  TF_CONFIG=... edge-train --data DATA --out runs/mw --strategy multiworker
  edge-train eval --model runs/unet --out runs/unet/eval           # the run's val subjects
"""

EVAL_EXAMPLES = """examples:
  edge-train eval --model runs/unet --out runs/unet/eval
  edge-train eval --model runs/unet/model.keras --data ../shared/data/usgra-seg \\
                  --layout folder --subjects all --out eval/usgra
  edge-train eval --model model.tflite --data DATA --subjects 1,5,7 --out eval/int8
"""


def _hw(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HxW, e.g. 128x176") from None
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes must be positive")
    return h, w


def _roi(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not x,y,w,h") from None
    return x, y, w, h


def _data_args(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--data", type=str, required=required,
                   help="folder of frames (kaggle: NAME.png + NAME_mask.png; folder: "
                        "images/ + masks/)")
    p.add_argument("--layout", type=str, choices=("kaggle", "folder"), default=None,
                   help="data layout (detected when omitted)")
    p.add_argument("--nerve-class", type=int, default=None,
                   help="class id of the nerve in folder-layout masks (default 1)")
    p.add_argument("--subjects-csv", type=str, default=None,
                   help="folder layout: CSV of stem,subject (else each image is a subject)")


def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-train", epilog=TRAIN_EXAMPLES,
                                description="Train a nerve segmentation U-Net (tf_keras).",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_args(p, required=True)
    p.add_argument("--out", type=str, default="runs/run", help="run folder (default runs/run)")
    p.add_argument("--input-size", type=_hw, default=(128, 176), help="HxW (default 128x176)")
    p.add_argument("--roi", type=_roi, default=None, help="crop x,y,w,h before resizing")
    m = p.add_argument_group("model")
    m.add_argument("--preset", type=str, choices=("reference",), default=None,
                   help="reference = the student project's encoder-decoder (no skips)")
    m.add_argument("--base-filters", type=int, default=16)
    m.add_argument("--depth", type=int, default=3)
    m.add_argument("--stem-stride", type=int, choices=(1, 2), default=2)
    m.add_argument("--upsample", type=str, choices=("bilinear", "transpose"), default="bilinear")
    m.add_argument("--dropout", type=float, default=0.0)
    m.add_argument("--separable", action="store_true")
    m.add_argument("--presence-head", action="store_true",
                   help="nerve-presence output; masks are emptied when presence < 0.5")
    m.add_argument("--max-filters", type=int, default=256)
    o = p.add_argument_group("optimization")
    o.add_argument("--epochs", type=int, default=40)
    o.add_argument("--batch", type=int, default=16, help="global batch size")
    o.add_argument("--lr", type=float, default=2e-3, help="peak lr (warm-up + cosine decay)")
    o.add_argument("--warmup-epochs", type=float, default=1.0)
    o.add_argument("--val-fraction", type=float, default=0.2)
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--patience", type=int, default=10, help="early stopping (0 = off)")
    o.add_argument("--bce-weight", type=float, default=1.0)
    o.add_argument("--dice-weight", type=float, default=1.0)
    o.add_argument("--presence-weight", type=float, default=0.2)
    o.add_argument("--augment", type=str, choices=("none", "flip", "light", "strong"),
                   default="light", help="strength (flip = horizontal flips only)")
    o.add_argument("--vflip", action="store_true", help="also flip vertically (off: depth axis)")
    o.add_argument("--elastic", action="store_true", help="elastic deformation (off)")
    r = p.add_argument_group("run")
    r.add_argument("--resume", action="store_true", help="continue from OUT/ckpt")
    r.add_argument("--init-weights", type=str, default=None,
                   help="start from a trained model.keras/.h5 of the same architecture")
    r.add_argument("--freeze-encoder", action="store_true")
    r.add_argument("--strategy", type=str, choices=("default", "mirrored", "multiworker"),
                   default="default", help="tf.distribute strategy (multiworker reads TF_CONFIG)")
    r.add_argument("--threads", type=int, default=None, help="TensorFlow CPU threads")
    r.add_argument("--max-steps-per-epoch", type=int, default=None, help="cap (smoke tests)")
    r.add_argument("--cache-dir", type=str, default=None, help="cache decoded arrays here")
    r.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)
    return p


def eval_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-train eval", epilog=EVAL_EXAMPLES,
                                description="Score a model: metrics.json + overlays.png.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=str, required=True,
                   help="run folder, model.keras/.h5, or .tflite/.onnx")
    _data_args(p, required=False)
    p.add_argument("--subjects", type=str, default=None,
                   help="val (the run's; default with a run), all (default otherwise), or 1,5,7")
    p.add_argument("--out", type=str, required=True, help="folder for metrics.json + overlays")
    p.add_argument("--input-size", type=_hw, default=None, help="HxW (default: the model's)")
    p.add_argument("--threshold", type=float, default=0.5)
    return p


def _model_kwargs(a) -> dict:
    if a.preset:
        return {"preset": a.preset}
    return {"base_filters": a.base_filters, "depth": a.depth, "stem_stride": a.stem_stride,
            "upsample": a.upsample, "dropout": a.dropout, "separable": a.separable,
            "presence_head": a.presence_head, "max_filters": a.max_filters}


def _train_config(a):
    from train.config import TrainConfig

    return TrainConfig(
        data=a.data, out=a.out, layout=a.layout, nerve_class=a.nerve_class or 1,
        subjects_csv=a.subjects_csv, input_hw=a.input_size, roi=a.roi, model=_model_kwargs(a),
        epochs=a.epochs, batch=a.batch, lr=a.lr, warmup_epochs=a.warmup_epochs,
        val_fraction=a.val_fraction, seed=a.seed, patience=a.patience,
        bce_weight=a.bce_weight, dice_weight=a.dice_weight, presence_weight=a.presence_weight,
        augment=a.augment, vflip=a.vflip, elastic=a.elastic, resume=a.resume,
        init_weights=a.init_weights, freeze_encoder=a.freeze_encoder, strategy=a.strategy,
        threads=a.threads, max_steps_per_epoch=a.max_steps_per_epoch, cache_dir=a.cache_dir,
        verbose=a.verbose)


def _eval_config(a):
    from pathlib import Path

    from train.evaluate import EvalConfig

    is_run = Path(a.model).is_dir() or (Path(a.model).parent / "split.json").is_file()
    subjects = a.subjects or ("val" if is_run and not a.data else "all")
    return EvalConfig(model=a.model, out=a.out, data=a.data, layout=a.layout,
                      nerve_class=a.nerve_class, subjects_csv=a.subjects_csv,
                      subjects=subjects, input_hw=a.input_size, threshold=a.threshold)


def _check_train_args(a, parser) -> None:
    for name in ("epochs", "batch"):
        if getattr(a, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if a.lr <= 0:
        parser.error("--lr must be positive, e.g. 2e-3")
    if a.max_steps_per_epoch is not None and a.max_steps_per_epoch < 1:
        parser.error("--max-steps-per-epoch must be at least 1")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from edge.errors import EdgeError

    try:
        if argv[:1] == ["prepare"]:  # public downloads -> the kit's layouts (no TensorFlow)
            from train.prepare import main as prepare_main

            return prepare_main(argv[1:])
        if argv[:1] == ["eval"]:
            a = eval_parser().parse_args(argv[1:])
            from train.evaluate import evaluate

            result = evaluate(_eval_config(a))
            print(f"per-image Dice {result['per_image_dice']:.4f}, pooled Dice "
                  f"{result['pooled_dice']:.4f}, IoU {result['iou']:.4f} "
                  f"on {result['n_images']} frames -> {a.out}")
            return 0
        if argv[:1] == ["train"]:
            argv = argv[1:]
        parser = train_parser()
        a = parser.parse_args(argv)
        _check_train_args(a, parser)
        from train.loop import train

        train(_train_config(a))
        return 0
    except EdgeError as e:
        print(f"edge-train: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("edge-train: interrupted; continue with --resume", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
