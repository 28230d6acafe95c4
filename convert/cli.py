"""edge-convert: the command line of convert/ (argparse lives only here).

    edge-convert MODEL --data DIR --out DIR [...]     the whole chain (see --help)
    edge-convert prune|quantize|onnx|validate|targets  one step, path -> path

The CLI contract is edge.clikit's: exit 0 ok, 1 runtime failure (failed gate, converter
crash), 2 bad input (one line, no traceback; a missing TensorFlow is one line with the install
command), 130 interrupted (Ctrl-C or SIGTERM: nothing is written, no partial files are left).
"""

from __future__ import annotations

# First: Ctrl-C and SIGTERM end the program with 130 and one line from here on, also during
# the heavy imports below and in the body (numpy, OpenCV, TensorFlow): edge.signals.
from edge import signals

signals.install_if_program("edge-convert", __name__)

import argparse
import shlex
import sys
from pathlib import Path

from edge import clikit, log

CHAIN_EXAMPLES = """\
examples (DATA: a prepared data folder, see docs/data.md):
  edge-convert runs/base16 --out models/base16
      run folder: its data, split (calibrate on TRAIN subjects, validate on VAL subjects)
  edge-convert model.keras --data data/kaggle-nerve/train --out out/ --prune 0.5
  edge-convert runs/base16 --out out/ --formats int8,onnx --prune 0 --max-dice-drop 0.02
  edge-convert runs/trial --out out/ --allow-low-dice     # below --min-dice: written, flagged

one step at a time (each path -> path):
  edge-convert prune runs/base16 --out pruned.keras --sparsity 0.5
  edge-convert quantize pruned.keras --data DATA --out model.tflite --variant int8
  edge-convert onnx pruned.keras --out model.onnx --data DATA
  edge-convert validate runs/base16 model.tflite model.onnx --json gate.json
  edge-convert targets model.tflite
"""
STEPS = ("prune", "quantize", "onnx", "validate", "targets")


def _add_data(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--data", type=Path, required=required, default=None,
                   help="data folder (None: the run folder's config.json 'data')")
    p.add_argument("--val-fraction", type=clikit.fraction, default=0.2,
                   help="share of SUBJECTS held out when MODEL is a bare file")
    p.add_argument("--seed", type=int, default=0, help="split/calibration seed")


def _add_gate(p: argparse.ArgumentParser) -> None:
    from convert.validate import (
        ALLOW_LOW_DICE_FLAG,
        DEFAULT_MAX_DICE_DROP,
        DEFAULT_MAX_DRIFT,
        DEFAULT_MIN_DICE,
    )

    p.add_argument("--max-dice-drop", type=float, default=DEFAULT_MAX_DICE_DROP,
                   help="int8 per-image Dice drop allowed vs the float model")
    p.add_argument("--min-dice", type=clikit.fraction, default=DEFAULT_MIN_DICE,
                   help="floor on the int8 per-image Dice on the held-out frames; below it "
                        "the gate fails and nothing is written (default "
                        f"{DEFAULT_MIN_DICE}: a model that overlaps the nerve by less than "
                        "half per image is not safe to ship; 0 = off)")
    p.add_argument(ALLOW_LOW_DICE_FLAG, action="store_true",
                   help="write the files even below --min-dice: a warning, recorded in the "
                        "report and every sidecar (default: refuse)")
    p.add_argument("--max-drift", type=float, default=DEFAULT_MAX_DRIFT,
                   help="mean |p - p_keras| allowed for any variant")
    p.add_argument("--max-fp-rate", type=clikit.fraction, default=None,
                   help="refuse when an int8 variant outlines a nerve on more than this share "
                        "of the held-out frames without one (default: off, the rate is "
                        "reported)")


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = clikit.ArgumentParser(prog=prog, description=description, epilog=CHAIN_EXAMPLES,
                                formatter_class=clikit.HelpFormatter)
    clikit.add_common_flags(p, verbose=True)
    return p


def chain_parser() -> argparse.ArgumentParser:
    from convert.chain import DEFAULT_CALIB_FRAMES, DEFAULT_PRUNE, FORMATS

    p = _parser("edge-convert",
                "Keras U-Net -> int8 TFLite (pruned if asked), int8 float-I/O, fp16, fp32 "
                "TFLite and ONNX, validated on held-out subjects (the gate), with sidecars and "
                "a report. Steps: "
                + ", ".join(STEPS) + " (edge-convert STEP --help).")
    p.add_argument("model", type=Path, help="edge-train run folder, or a .keras/.h5 file")
    p.add_argument("--out", type=Path, required=True, help="output folder (replaced on success)")
    _add_data(p)
    p.add_argument("--prune", type=clikit.fraction, default=DEFAULT_PRUNE,
                   help="target sparsity of conv/dense kernels; 0 = no pruning (pruning makes "
                        "the file smaller to download, not faster to run)")
    p.add_argument("--heads", type=clikit.positive_int, default=None,
                   help="U-Net++ (edge-train --arch unetpp): keep heads 1..K, averaged, and "
                        "drop the nested nodes only deeper heads need (fewer MACs; default: "
                        "every head)")
    p.add_argument("--prune-epochs", type=clikit.non_negative_int, default=2,
                   help="fine-tuning epochs while pruning")
    p.add_argument("--formats", type=clikit.str_list, default=tuple(FORMATS),
                   help="comma list of " + ",".join(FORMATS))
    p.add_argument("--calib-frames", type=clikit.non_negative_int, default=DEFAULT_CALIB_FRAMES,
                   help="seeded training frames for int8 calibration")
    _add_gate(p)
    clikit.add_postprocess_flags(p, "the run's config.json")
    p.add_argument("--name", type=str, default=None,
                   help="model name (None: the run folder's or file's name)")
    p.add_argument("--model-version", type=str, default="1", help="sidecar version")
    p.add_argument("--latency-runs", type=clikit.positive_int, default=50,
                   help="timed runs of the quick latency figure")
    return p


def step_parser(step: str) -> argparse.ArgumentParser:
    descriptions = {
        "targets": "TFLite ops per model and what XNNPACK, GPU, NNAPI, Edge TPU cannot run",
        "validate": "score exported models against the Keras model on validation subjects, "
                    "each with its own sidecar's post-processing unless overridden",
        "prune": "magnitude-prune conv/dense kernels while fine-tuning, then strip",
        "quantize": "Keras -> one TFLite variant (int8 calibrated on training frames)",
        "onnx": "Keras -> ONNX (opset 17, input 'image'); parity check with --data",
    }
    p = _parser(f"edge-convert {step}", descriptions[step])
    if step == "targets":
        p.add_argument("models", type=Path, nargs="+", help=".tflite files")
        p.add_argument("--json", type=Path, default=None, help="also write the report here")
        return p
    p.add_argument("model", type=Path, help="edge-train run folder, or a .keras/.h5 file")
    if step == "validate":
        p.add_argument("exports", type=Path, nargs="+", help=".tflite/.onnx files")
        _add_data(p)
        _add_gate(p)
        clikit.add_postprocess_flags(p, "each model's sidecar or run config")
        p.add_argument("--json", type=Path, default=None, help="also write the rows here")
        return p
    p.add_argument("--out", type=Path, required=True, help="output file")
    _add_data(p)
    if step == "prune":
        p.add_argument("--sparsity", type=clikit.fraction, default=0.5,
                       help="target sparsity of conv/dense kernels")
        p.add_argument("--epochs", type=clikit.non_negative_int, default=2,
                       help="fine-tuning epochs while pruning")
    elif step == "quantize":
        p.add_argument("--variant", choices=("int8", "int8-float-io", "fp16", "fp32"),
                       default="int8", help="TFLite variant")
        p.add_argument("--calib-frames", type=clikit.non_negative_int, default=200,
                       help="seeded training frames for int8 calibration")
    return p


def _overrides(args) -> dict:
    return {"threshold": args.threshold, "min_area": args.min_area,
            "presence_threshold": args.presence_threshold}


def _run_chain(args, argv) -> int:
    from convert.chain import ChainConfig, run_chain
    from convert.validate import GateConfig

    cfg = ChainConfig(
        formats=args.formats, prune=args.prune,
        prune_epochs=args.prune_epochs, calib_frames=args.calib_frames, seed=args.seed,
        val_fraction=args.val_fraction,
        gate=GateConfig(max_dice_drop=args.max_dice_drop, max_drift=args.max_drift,
                        min_dice=args.min_dice, allow_low_dice=args.allow_low_dice,
                        max_fp_rate=args.max_fp_rate),
        threshold=args.threshold, min_area=args.min_area,
        presence_threshold=args.presence_threshold, name=args.name, version=args.model_version,
        latency_runs=args.latency_runs, heads=args.heads,
        command="edge-convert " + shlex.join(argv))
    log.say(log.config_block("edge-convert: resolved config", cfg))
    try:
        run_chain(args.model, args.data, args.out, cfg)
    except KeyboardInterrupt as e:
        signals.say_stopped("edge-convert", e, "nothing written")
        return clikit.EXIT_INTERRUPTED
    return clikit.EXIT_OK


def _run_prune(args) -> int:
    from convert.data import load_frames, open_source
    from convert.prune import PruneConfig, prune_file, sparsity_table
    from edge.fsutil import write_json_atomic

    _, src = open_source(args.model, args.data, args.val_fraction, args.seed)
    x, y = load_frames(src.train, src.pre, src.nerve_class)
    cfg = PruneConfig(target_sparsity=args.sparsity, epochs=args.epochs, seed=args.seed)
    rep = prune_file(src.model_path, args.out, x, y, cfg)
    write_json_atomic(args.out.with_suffix(".sparsity.json"), rep)
    print(sparsity_table(rep))
    return clikit.EXIT_OK


def _run_quantize(args) -> int:
    from convert.data import calibration_frames, open_source
    from convert.quantize import quantize_file

    calibrated = args.variant.startswith("int8")
    _, src = open_source(args.model, args.data, args.val_fraction, args.seed,
                         need_data=calibrated)
    calib = (calibration_frames(src.train, src.pre, args.calib_frames, args.seed)
             if calibrated else None)
    result = quantize_file(src.model_path, args.out, args.variant, calib, src.pre)
    log.say(f"wrote {args.out}; input quantization {result['input_quant']}")
    return clikit.EXIT_OK


def _run_onnx(args) -> int:
    from convert.data import load_frames, open_source
    from convert.onnx_export import PARITY_FRAMES, onnx_file

    _, src = open_source(args.model, args.data, args.val_fraction, args.seed, need_data=False)
    frames = load_frames(src.val[:PARITY_FRAMES], src.pre)[0] if src.val else None
    result = onnx_file(src.model_path, args.out, frames)
    log.say(f"wrote {args.out}; {result}")
    return clikit.EXIT_OK


def _run_validate(args) -> int:
    from convert.data import labelled_frames, open_source
    from convert.quantize import has_int8_tensors
    from convert.validate import GateConfig, results_table, validate
    from edge.fsutil import write_json_atomic
    from edge.model.segmodel import SegModel
    from edge.model.settings import Overrides
    from train.modelio import open_seg_model

    source, src = open_source(args.model, args.data, args.val_fraction, args.seed,
                              post_overrides=_overrides(args))
    frames = labelled_frames(src.val, src.pre, src.nerve_class, src.class_ids)
    exports = {p.name: p for p in args.exports}
    models = {name: open_seg_model(p, Overrides(**_overrides(args)))  # each its own sidecar
              for name, p in exports.items()}
    # the Dice floor applies to int8 models: known by their tensors (a name like m.tflite
    # does not say; the chain's names carry the variant)
    int8_files = tuple(n for n, p in exports.items() if "int8" in n or has_int8_tensors(p))
    gate = GateConfig(args.max_dice_drop, args.max_drift, dice_gated=int8_files,
                      min_dice=args.min_dice, allow_low_dice=args.allow_low_dice,
                      max_fp_rate=args.max_fp_rate)
    reference = SegModel(source, src.settings)
    result = validate(reference, reference, models, frames, gate)
    print(results_table(result.rows))
    if args.json:
        write_json_atomic(args.json, {"rows": result.rows, "failures": result.failures,
                                      "warnings": result.warnings,
                                      "val_subjects": src.summary()["val_subjects"]})
    for line in result.failures:
        log.note(f"edge-convert validate: FAIL {line}")
    for line in result.warnings:
        log.note(f"edge-convert validate: warning (--allow-low-dice): {line}")
    return clikit.EXIT_OK if result.passed else clikit.EXIT_RUNTIME


def _run_targets(args) -> int:
    from convert.targets import report_markdown, target_report
    from edge.fsutil import write_json_atomic

    reports = [target_report(p) for p in args.models]
    print(report_markdown(reports))
    if args.json:
        write_json_atomic(args.json, reports)
    return clikit.EXIT_OK


STEP_RUNNERS = {"prune": _run_prune, "quantize": _run_quantize, "onnx": _run_onnx,
                "validate": _run_validate, "targets": _run_targets}


def _main(argv: list[str]) -> int:
    step = argv[0] if argv and argv[0] in STEPS else None
    args = step_parser(step).parse_args(argv[1:]) if step else chain_parser().parse_args(argv)
    clikit.quiet_tensorflow(args.verbose)
    if step != "targets":
        from train.modelio import import_tensorflow

        with signals.nothing_to_save():  # a signal meanwhile: 130 at once
            import_tensorflow()  # one line when missing; start-up noise hidden unless --verbose
    if step:
        return STEP_RUNNERS[step](args)
    return _run_chain(args, argv)


def main(argv: list[str] | None = None) -> int:
    return signals.finish(clikit.run_cli("edge-convert", _main, argv))  # a program leaves here


if __name__ == "__main__":
    sys.exit(main())
