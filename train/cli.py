"""edge-train: train a nerve segmentation model, evaluate one (`edge-train eval`), or turn the
public data downloads into the kit's layouts (`edge-train prepare`).

argparse lives here only; the library takes TrainConfig / EvalConfig. The CLI contract is
edge.clikit's: exit 0 ok, 1 runtime failure, 2 bad input (one line, no traceback; a missing
TensorFlow is one line with the install command), 130 interrupted (Ctrl-C or SIGTERM: the
last epoch's checkpoint is kept, continue with --resume).
"""

from __future__ import annotations

# First: Ctrl-C and SIGTERM end the program with 130 and one line from here on, also during
# the heavy imports below and in the body (numpy, OpenCV, TensorFlow): edge.signals.
from edge import signals

signals.install_if_program("edge-train", __name__)

import argparse
import sys

from edge import clikit, log

TRAIN_EXAMPLES = """examples (DATA: a prepared data folder, see docs/data.md):
  edge-train --data data/kaggle-nerve/train --out runs/unet
  edge-train --data data/kaggle-nerve/train --out runs/ref --preset reference
  edge-train --data DATA --out runs/unet --resume                 # continue after a stop
  edge-train --data data/usgra-seg --layout folder --nerve-class 1 \\
             --init-weights default --out runs/clinic --epochs 20 --lr 5e-4
  edge-train --data data/usgra-seg --layout folder --classes 1,2 --class-names nerve,vessel \\
             --init-weights runs/unet/model.keras --out runs/nerve-vessel --epochs 30
  edge-train cv --folds 5 --data data/usgra-seg --layout folder --classes 1,2 \\
             --class-names nerve,vessel --init-weights runs/unet/model.keras --out runs/cv
  TF_CONFIG=... edge-train --data DATA --out runs/mw --strategy multiworker
  edge-train eval --model runs/unet --out runs/unet/eval           # the run's val subjects
  edge-train export-init runs/unet --out init/unet.keras          # + sidecar, for --init-weights
  edge-train prepare kaggle --src DOWNLOAD --out data/kaggle-nerve # see docs/data.md
  edge-train select --frames frames/ --n 100 --out chosen/    # docs/clinic.md
  edge-train label push --frames chosen/ --url URL --token T   # + pull, export, import
"""

EVAL_EXAMPLES = """examples (DATA: a prepared data folder, see docs/data.md):
  edge-train eval --model runs/unet --out runs/unet/eval
  edge-train eval --model runs/unet/model.keras --data data/usgra-seg \\
                  --layout folder --subjects all --out eval/usgra
  edge-train eval --model model.tflite --data DATA --subjects 1,5,7 --out eval/int8
  edge-train eval --model default --data data/usgra-seg --layout folder --out eval/before
"""
SUBJECT_CHOICES = "val (the run's; default with a run folder), all (default otherwise), or 1,5,7"


def add_data_flags(p: argparse.ArgumentParser, required: bool, data_default: str = "") -> None:
    """--data, --layout, --nerve-class, --subjects-csv, --resize-masks: how a labelled data
    folder is read (edge-train, edge-train eval and edge-bench accuracy/compare alike)."""
    p.add_argument("--data", type=str, required=required, default=None,
                   help="folder of frames (kaggle: NAME.png + NAME_mask.png; folder: "
                        "images/ + masks/)" + (f" (None: {data_default})" if data_default
                                               else ""))
    p.add_argument("--layout", type=str, choices=("kaggle", "folder"), default=None,
                   help="data layout (None: detected)")
    p.add_argument("--nerve-class", type=int, default=None,
                   help="class id of the nerve in folder-layout masks (None: 1, or the run's)")
    p.add_argument("--subjects-csv", type=str, default=None,
                   help="folder layout: CSV of stem,subject (None: each image is a subject)")
    p.add_argument("--resize-masks", action="store_true",
                   help="resize masks whose size differs from their image (default: refuse "
                        "them with an error naming the file)")


def train_parser() -> argparse.ArgumentParser:
    p = clikit.ArgumentParser(prog="edge-train", epilog=TRAIN_EXAMPLES,
                                description="Train a nerve segmentation U-Net (tf_keras). "
                                            "Subcommand: edge-train eval --help.",
                                formatter_class=clikit.HelpFormatter)
    add_data_flags(p, required=True)
    p.add_argument("--out", type=str, default="runs/run", help="run folder")
    p.add_argument("--input-size", type=clikit.hw, default=(128, 176),
                   help="model input HxW (default: 128x176)")
    p.add_argument("--roi", type=clikit.roi, default=None, help="crop x,y,w,h before resizing")
    m = p.add_argument_group("model")
    m.add_argument("--preset", type=str, choices=("reference",), default=None,
                   help="reference = the student project's encoder-decoder (no skips)")
    m.add_argument("--arch", type=str, choices=("unet", "attention", "unetpp"),
                   default="unet", help="unet; attention = Attention U-Net (gated skips); "
                   "unetpp = U-Net++ (nested skips, one head per top node)")
    m.add_argument("--no-deep-supervision", dest="deep_supervision", action="store_false",
                   help="U-Net++: train the last head only (default: every head)")
    m.add_argument("--base-filters", type=clikit.positive_int, default=16,
                   help="channels at the first level (doubled per level)")
    m.add_argument("--depth", type=clikit.positive_int, default=3, help="2x down-samplings")
    m.add_argument("--stem-stride", type=int, choices=(1, 2), default=2,
                   help="2 = U-Net at half resolution (about 4x fewer MACs)")
    m.add_argument("--upsample", type=str, choices=("bilinear", "transpose"),
                   default="bilinear", help="decoder up-sampling (bilinear: Edge-TPU friendly)")
    m.add_argument("--dropout", type=float, default=0.0, help="bottleneck SpatialDropout rate")
    m.add_argument("--separable", action="store_true",
                   help="depthwise-separable second conv per block (fewer MACs)")
    m.add_argument("--presence-head", action="store_true",
                   help="nerve-presence output; masks are emptied when presence < 0.5")
    m.add_argument("--max-filters", type=clikit.positive_int, default=256,
                   help="cap on channels per level")
    o = p.add_argument_group("optimization")
    o.add_argument("--epochs", type=clikit.positive_int, default=40, help="training epochs")
    o.add_argument("--batch", type=clikit.positive_int, default=16, help="global batch size")
    o.add_argument("--lr", type=float, default=2e-3, help="peak lr (warm-up + cosine decay)")
    o.add_argument("--warmup-epochs", type=float, default=1.0, help="linear warm-up length")
    o.add_argument("--val-fraction", type=float, default=0.2,
                   help="share of frames held out, whole subjects at a time")
    o.add_argument("--seed", type=int, default=0, help="split, augmentation and init seed")
    o.add_argument("--patience", type=clikit.non_negative_int, default=10,
                   help="early stopping after this many epochs without a better val Dice "
                        "(0 = off)")
    o.add_argument("--bce-weight", type=float, default=1.0, help="BCE share of the loss")
    o.add_argument("--dice-weight", type=float, default=1.0, help="soft-Dice share of the loss")
    o.add_argument("--presence-weight", type=float, default=0.2,
                   help="presence-head BCE weight")
    o.add_argument("--augment", type=str, choices=("none", "flip", "light", "strong"),
                   default="light", help="strength (flip = horizontal flips only)")
    o.add_argument("--vflip", action="store_true", help="also flip vertically (off: depth axis)")
    o.add_argument("--elastic", action="store_true", help="elastic deformation")
    c = p.add_argument_group("classes (multi-structure models, CLASSES in docs/train.md)")
    c.add_argument("--classes", type=str, default=None,
                   help="class ids to segment, one sigmoid channel each, e.g. 1,2 (folder "
                        "layout; None: the nerve only, --nerve-class)")
    c.add_argument("--class-names", type=str, default=None,
                   help="one name per --classes id, e.g. nerve,vessel (vessel, artery, vein, "
                        "pleura, peritoneum, bone are safety structures)")
    c.add_argument("--folds", type=int, default=0,
                   help="K-fold cross-validation: hold out --fold of K folds by subject and "
                        "keep the last epoch; 1 = train on every frame, keep the last epoch "
                        "(0: the usual --val-fraction split)")
    c.add_argument("--fold", type=clikit.non_negative_int, default=0, help="held-out fold")
    r = p.add_argument_group("run")
    r.add_argument("--resume", action="store_true", help="continue from OUT/ckpt")
    r.add_argument("--init-weights", type=str, default=None,
                   help="fine-tune from: default (the packaged float model), an edge-train "
                        "run folder or a .keras/.h5; the architecture, normalization and "
                        "input size (unless --input-size) then come from it (None: fresh "
                        "weights)")
    r.add_argument("--freeze-encoder", action="store_true", help="train the decoder only")
    r.add_argument("--strategy", type=str, choices=("default", "mirrored", "multiworker"),
                   default="default", help="tf.distribute strategy (multiworker reads TF_CONFIG)")
    r.add_argument("--threads", type=clikit.positive_int, default=None,
                   help="TensorFlow CPU threads (None: TensorFlow's choice)")
    r.add_argument("--train-frames", type=clikit.positive_int, default=None, metavar="N",
                   help="train on N of the training frames, drawn with --seed (a learning "
                        "curve: how many frames must a clinic label?) (None: all)")
    r.add_argument("--max-steps-per-epoch", type=clikit.positive_int, default=None,
                   help="cap on steps per epoch (smoke tests)")
    r.add_argument("--cache-dir", type=str, default=None, help="cache decoded arrays here")
    r.add_argument("--progress", type=int, choices=(0, 1, 2), default=1,
                   help="Keras progress: 1 bar, 2 one line per epoch, 0 silent")
    clikit.add_common_flags(p, verbose=True)
    return p


def eval_parser() -> argparse.ArgumentParser:
    p = clikit.ArgumentParser(prog="edge-train eval", epilog=EVAL_EXAMPLES,
                                description="Score a model with the kit's one evaluator "
                                            "(edge.model.evaluate): metrics.json + overlays.png.",
                                formatter_class=clikit.HelpFormatter)
    p.add_argument("--model", type=str, required=True,
                   help="run folder, model.keras/.h5, .tflite/.onnx, or default (the "
                        "packaged int8 model edge-run runs without --model)")
    add_data_flags(p, required=False, data_default="the run's")
    p.add_argument("--subjects", type=str, default=None, help=SUBJECT_CHOICES)
    p.add_argument("--out", type=str, required=True, help="folder for metrics.json + overlays")
    clikit.add_postprocess_flags(p, "the model's sidecar or run config")
    clikit.add_common_flags(p, verbose=True)
    return p


def _model_kwargs(a) -> dict:
    if a.preset:
        return {"preset": a.preset}
    return {"base_filters": a.base_filters, "depth": a.depth, "stem_stride": a.stem_stride,
            "upsample": a.upsample, "dropout": a.dropout, "separable": a.separable,
            "presence_head": a.presence_head, "max_filters": a.max_filters,
            "arch": a.arch, "deep_supervision": a.deep_supervision}


def explicit_flags(parser: argparse.ArgumentParser, argv: list[str], parsed) -> set[str]:
    """The dests of the flags given on the command line: a second parse in which every
    default is a marker object (not a string: argparse would run it through the flag's type),
    so only what was typed differs from it."""
    unset = object()
    parser.set_defaults(**{dest: unset for dest in vars(parsed)})
    given = vars(parser.parse_args(argv))
    return {dest for dest, value in given.items() if value is not unset}


def _architecture(a, explicit: set[str]) -> dict:
    """model kwargs, input_hw, scale and offset of the new model: from the --init-weights
    model when it says its architecture (flags given explicitly must agree), else the flags."""
    from train.initmodel import ARCH_FLAGS, merge_architecture, resolve_init

    arch = {"model": _model_kwargs(a), "input_hw": a.input_size}
    init = resolve_init(a.init_weights) if a.init_weights else None
    if init is None or init.model is None:
        return arch
    given = {d: getattr(a, d) for d in ARCH_FLAGS if d in explicit}
    model, input_hw = merge_architecture(init, given,
                                         a.dropout if "dropout" in explicit else None)
    if "input_size" in explicit:  # no weight depends on it: a fine-tune may change it
        input_hw = a.input_size
    arch.update(model=model, input_hw=input_hw or a.input_size)
    arch.update({k: v for k, v in (("scale", init.scale), ("offset", init.offset))
                 if v is not None})
    log.say(f"init: {init.path.name}, architecture from {init.described_by}: "
            f"input {arch['input_hw'][0]}x{arch['input_hw'][1]}, {model}")
    return arch


def _train_config(a, explicit: set[str] = frozenset()):
    from train.classes import parse_classes
    from train.config import TrainConfig

    classes = parse_classes(a.classes, a.class_names) if a.classes else None
    return TrainConfig(
        data=a.data, out=a.out, layout=a.layout, nerve_class=a.nerve_class or 1,
        classes=classes, folds=a.folds, fold=a.fold,
        subjects_csv=a.subjects_csv, resize_masks=a.resize_masks, roi=a.roi,
        **_architecture(a, explicit), epochs=a.epochs, batch=a.batch, lr=a.lr,
        warmup_epochs=a.warmup_epochs, val_fraction=a.val_fraction, seed=a.seed,
        train_frames=a.train_frames,
        patience=a.patience, bce_weight=a.bce_weight, dice_weight=a.dice_weight,
        presence_weight=a.presence_weight, augment=a.augment, vflip=a.vflip,
        elastic=a.elastic, resume=a.resume, init_weights=a.init_weights,
        freeze_encoder=a.freeze_encoder, strategy=a.strategy, threads=a.threads,
        max_steps_per_epoch=a.max_steps_per_epoch, cache_dir=a.cache_dir, verbose=a.progress)


def _eval_model(name: str) -> str:
    """--model default: the packaged model edge-run runs without --model (any folder)."""
    if name != "default":
        return name
    from edge.model.store import default_model_path

    return str(default_model_path())


def _eval_config(a):
    from train.config import run_of
    from train.evaluate import EvalConfig

    model = _eval_model(a.model)
    subjects = a.subjects or ("val" if run_of(model) and not a.data else "all")
    return EvalConfig(model=model, out=a.out, data=a.data, layout=a.layout,
                      nerve_class=a.nerve_class, subjects_csv=a.subjects_csv,
                      subjects=subjects, threshold=a.threshold, min_area=a.min_area,
                      presence_threshold=a.presence_threshold, resize_masks=a.resize_masks)


def _eval(argv: list[str]) -> int:
    a = eval_parser().parse_args(argv)
    clikit.quiet_tensorflow(a.verbose)
    from edge.model.evaluate import fp_phrase
    from train.evaluate import evaluate

    result = evaluate(_eval_config(a))
    print(f"per-image Dice {result['per_image_dice']:.4f}, pooled Dice "
          f"{result['pooled_dice']:.4f}, IoU {result['iou']:.4f} on {result['n_images']} "
          f"frames; {fp_phrase(result)} (threshold {result['threshold']}, min area "
          f"{result['min_area']}) -> {a.out}")
    return clikit.EXIT_OK


def _train(argv: list[str]) -> int:
    parser = train_parser()
    a = parser.parse_args(argv)
    if a.lr <= 0:
        parser.error("--lr must be positive, e.g. 2e-3")
    cfg = _train_config(a, explicit_flags(train_parser(), argv, a))  # before TF: bad input
    clikit.quiet_tensorflow(a.verbose)
    from train.modelio import import_tensorflow

    with signals.nothing_to_save():  # a signal meanwhile: 130 at once, not after the import
        import_tensorflow()  # one line when missing; start-up noise hidden unless --verbose
        from train.loop import train

    try:
        train(cfg)
    except KeyboardInterrupt as e:
        signals.say_stopped("edge-train", e, _resume_hint(a.out))
        return clikit.EXIT_INTERRUPTED
    return clikit.EXIT_OK


def _resume_hint(out: str) -> str:
    from pathlib import Path

    from train.loop import CKPT_DIR, STATE_FILE

    ckpt = Path(out) / CKPT_DIR
    if (ckpt / STATE_FILE).is_file():
        return f"the last finished epoch's checkpoint is in {ckpt}: continue with --resume"
    return "stopped before the first epoch finished: nothing to resume, start again"


# Subcommands besides training itself (the default, also spelled `edge-train train`).
def _prepare(argv: list[str]) -> int:
    """Public downloads -> the kit's layouts (numpy + OpenCV only, no TensorFlow)."""
    from train.cli_subcommands import prepare_main

    return prepare_main(argv)


def _export_init(argv: list[str]) -> int:
    """A run's float Keras model + sidecar: a starting point for --init-weights (no TF)."""
    from train.cli_subcommands import export_main

    return export_main(argv)


def _cv(argv: list[str]) -> int:
    """K-fold cross-validation: one edge-train process per fold + a results JSON."""
    from train.cli_subcommands import cv_main

    return cv_main(argv)


def _select(argv: list[str]) -> int:
    """Choose captured frames to label (numpy + OpenCV + the device runtime, no TF)."""
    from train.label.cli import select_main

    return select_main(argv)


def _label(argv: list[str]) -> int:
    """Label Studio push/pull, COCO export/import (no TF)."""
    from train.label.cli import label_main

    return label_main(argv)


SUBCOMMANDS = {"eval": _eval, "train": _train, "prepare": _prepare, "cv": _cv,
               "export-init": _export_init, "select": _select, "label": _label}


def _main(argv: list[str]) -> int:
    if argv[:1] and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    return _train(argv)


def main(argv: list[str] | None = None) -> int:
    # A program leaves in signals.finish without finalizing the interpreter: stopped
    # mid-epoch, tf.data's worker threads may still call into Python while it finalizes,
    # which aborts the process (a fatal "PyThreadState_Get" error, exit -6, seen under load).
    return signals.finish(clikit.run_cli("edge-train", _main, argv))


if __name__ == "__main__":
    sys.exit(main())
