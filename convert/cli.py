"""edge-convert: the command line of convert/ (argparse lives only here).

    edge-convert MODEL --data DIR --out DIR [...]     the whole chain (see --help)
    edge-convert prune|quantize|onnx|validate|targets  one step, path -> path

Exit codes: 0 ok, 2 bad input (one line, no traceback), 1 runtime failure (failed gate,
converter crash).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

CHAIN_EXAMPLES = """\
examples:
  edge-convert runs/base16 --out models/base16
      run folder: its data, split (calibrate on TRAIN subjects, validate on VAL subjects)
  edge-convert model.keras --data ../shared/data/kaggle-nerve/train --out out/ --prune 0.5
  edge-convert runs/base16 --out out/ --formats int8,onnx --prune 0 --max-dice-drop 0.02

one step at a time (each path -> path):
  edge-convert prune runs/base16 --out pruned.keras --sparsity 0.5
  edge-convert quantize pruned.keras --data DIR --out model.tflite --variant int8
  edge-convert onnx pruned.keras --out model.onnx --data DIR
  edge-convert validate runs/base16 model.tflite model.onnx
  edge-convert targets model.tflite
"""
STEPS = ("prune", "quantize", "onnx", "validate", "targets")


def _floats01(name):
    def parse(text):
        v = float(text)
        if not 0.0 <= v < 1.0:
            raise argparse.ArgumentTypeError(f"{name} must be in [0, 1), got {text}")
        return v

    return parse


def _formats(text: str) -> tuple[str, ...]:
    return tuple(f.strip() for f in text.split(",") if f.strip())


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text}")
    return v


def _add_data(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--data", type=Path, required=required,
                   help="data folder (default: the run folder's config.json 'data')")
    p.add_argument("--val-fraction", type=_floats01("--val-fraction"), default=0.2,
                   help="share of SUBJECTS held out when MODEL is a bare file (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="split/calibration seed (default 0)")


def _add_post(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threshold", type=float, default=None,
                   help="mask threshold (default: the run's config.json, else 0.5)")
    p.add_argument("--min-area", type=_positive_int, default=None,
                   help="drop components under this many model-input pixels (run's, else 0)")
    p.add_argument("--presence-threshold", type=float, default=None,
                   help="empty the mask below this presence score (run's, else 0.5)")


def _add_gate(p: argparse.ArgumentParser) -> None:
    from convert.validate import DEFAULT_MAX_DICE_DROP, DEFAULT_MAX_DRIFT

    p.add_argument("--max-dice-drop", type=float, default=DEFAULT_MAX_DICE_DROP,
                   help=f"int8 per-image Dice drop allowed vs float ({DEFAULT_MAX_DICE_DROP})")
    p.add_argument("--max-drift", type=float, default=DEFAULT_MAX_DRIFT,
                   help=f"mean |p - p_keras| allowed for any variant ({DEFAULT_MAX_DRIFT})")


def chain_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-convert", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Keras U-Net -> pruned int8 TFLite, int8 float-I/O, fp16, fp32 TFLite and "
                    "ONNX, validated on held-out subjects (the gate), with sidecars and a report."
                    " Steps: " + ", ".join(STEPS) + " (edge-convert STEP --help).",
        epilog=CHAIN_EXAMPLES)
    p.add_argument("model", type=Path, help="edge-train run folder, or a .keras/.h5 file")
    p.add_argument("--out", type=Path, required=True, help="output folder (replaced on success)")
    _add_data(p)
    p.add_argument("--prune", type=_floats01("--prune"), default=0.5,
                   help="target sparsity of conv/dense kernels; 0 = no pruning (0.5)")
    p.add_argument("--prune-epochs", type=_positive_int, default=2,
                   help="fine-tuning epochs while pruning (2)")
    p.add_argument("--formats", type=_formats, default=None,
                   help="comma list of int8,int8-float-io,fp16,fp32,onnx,web (all)")
    p.add_argument("--calib-frames", type=_positive_int, default=200,
                   help="seeded training frames for int8 calibration (200)")
    _add_gate(p)
    _add_post(p)
    p.add_argument("--name", type=str, default=None, help="model name (run folder name)")
    p.add_argument("--model-version", type=str, default="1", help="sidecar version ('1')")
    p.add_argument("--latency-runs", type=_positive_int, default=50,
                   help="timed runs of the quick latency figure (50)")
    return p


def step_parser(step: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"edge-convert {step}", epilog=CHAIN_EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    if step == "targets":
        p.description = "TFLite ops per model and what XNNPACK, GPU, NNAPI, Edge TPU cannot run"
        p.add_argument("models", type=Path, nargs="+", help=".tflite files")
        p.add_argument("--json", type=Path, default=None, help="also write the report here")
        return p
    p.add_argument("model", type=Path, help="edge-train run folder, or a .keras/.h5 file")
    if step == "validate":
        p.description = "score exported models against the Keras model on validation subjects"
        p.add_argument("exports", type=Path, nargs="+", help=".tflite/.onnx files")
        _add_data(p)
        _add_gate(p)
        _add_post(p)
        return p
    p.add_argument("--out", type=Path, required=True, help="output file")
    _add_data(p)
    if step == "prune":
        p.description = "magnitude-prune conv/dense kernels while fine-tuning, then strip"
        p.add_argument("--sparsity", type=_floats01("--sparsity"), default=0.5)
        p.add_argument("--epochs", type=_positive_int, default=2)
    elif step == "quantize":
        p.description = "Keras -> one TFLite variant (int8 calibrated on training frames)"
        p.add_argument("--variant", choices=("int8", "int8-float-io", "fp16", "fp32"),
                       default="int8")
        p.add_argument("--calib-frames", type=_positive_int, default=200)
    else:
        p.description = "Keras -> ONNX (opset 17, input 'image'); parity check with --data"
    return p


def _run_chain(args, argv) -> int:
    from convert.chain import DEFAULT_FORMATS, ChainConfig, run_chain
    from convert.validate import GateConfig

    cfg = ChainConfig(
        formats=args.formats or DEFAULT_FORMATS, prune=args.prune,
        prune_epochs=args.prune_epochs, calib_frames=args.calib_frames, seed=args.seed,
        val_fraction=args.val_fraction,
        gate=GateConfig(max_dice_drop=args.max_dice_drop, max_drift=args.max_drift),
        threshold=args.threshold, min_area=args.min_area,
        presence_threshold=args.presence_threshold, name=args.name, version=args.model_version,
        latency_runs=args.latency_runs, command="edge-convert " + shlex.join(argv))
    print(f"edge-convert: {cfg}")
    run_chain(args.model, args.data, args.out, cfg)
    return 0


def _post(args, run_config: dict):
    from convert.data import postprocess_for

    return postprocess_for(run_config, args.threshold, args.min_area, args.presence_threshold)


def _run_prune(args) -> int:
    from convert.data import load_frames, open_source
    from convert.prune import PruneConfig, prune_file, sparsity_table
    from edge.metadata import write_json_atomic

    _, src = open_source(args.model, args.data, args.val_fraction, args.seed)
    x, y = load_frames(src.train, src.pre, src.nerve_class)
    cfg = PruneConfig(target_sparsity=args.sparsity, epochs=args.epochs, seed=args.seed)
    rep = prune_file(src.model_path, args.out, x, y, cfg)
    write_json_atomic(args.out.with_suffix(".sparsity.json"), rep)
    print(sparsity_table(rep))
    return 0


def _run_quantize(args) -> int:
    from convert.data import calibration_frames, open_source
    from convert.quantize import quantize_file

    calibrated = args.variant.startswith("int8")
    _, src = open_source(args.model, args.data, args.val_fraction, args.seed,
                         need_data=calibrated)
    calib = (calibration_frames(src.train, src.pre, args.calib_frames, args.seed)
             if calibrated else None)
    result = quantize_file(src.model_path, args.out, args.variant, calib, src.pre)
    print(f"wrote {args.out}; input quantization {result['input_quant']}")
    return 0


def _run_onnx(args) -> int:
    from convert.data import load_frames, open_source
    from convert.onnx_export import PARITY_FRAMES, onnx_file

    _, src = open_source(args.model, args.data, args.val_fraction, args.seed, need_data=False)
    frames = load_frames(src.val[:PARITY_FRAMES], src.pre)[0] if src.val else None
    result = onnx_file(src.model_path, args.out, frames)
    print(f"wrote {args.out}; {result}")
    return 0


def _run_validate(args) -> int:
    from convert.data import load_frames, open_source
    from convert.validate import GateConfig, results_table, validate

    model, src = open_source(args.model, args.data, args.val_fraction, args.seed)
    x, y = load_frames(src.val, src.pre, src.nerve_class)
    exports = {p.name: p for p in args.exports}
    int8_files = tuple(n for n in exports if "int8" in n)  # file names carry the variant
    gate = GateConfig(args.max_dice_drop, args.max_drift, dice_gated=int8_files)
    result = validate(model, model, exports, x, y, _post(args, src.run_config), gate)
    print(results_table(result.rows))
    for line in result.failures:
        print(f"edge-convert validate: FAIL {line}", file=sys.stderr)
    return 0 if result.passed else 1


def _run_targets(args) -> int:
    from convert.targets import report_markdown, target_report
    from edge.metadata import write_json_atomic

    reports = [target_report(p) for p in args.models]
    print(report_markdown(reports))
    if args.json:
        write_json_atomic(args.json, reports)
    return 0


STEP_RUNNERS = {"prune": _run_prune, "quantize": _run_quantize, "onnx": _run_onnx,
                "validate": _run_validate, "targets": _run_targets}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    step = argv[0] if argv and argv[0] in STEPS else None
    try:
        if step:
            return STEP_RUNNERS[step](step_parser(step).parse_args(argv[1:]))
        return _run_chain(chain_parser().parse_args(argv), argv)
    except KeyboardInterrupt:
        print("edge-convert: interrupted; nothing written", file=sys.stderr)
        return 130
    except Exception as exc:  # typed errors -> their exit code, one line, no traceback
        from edge.errors import EdgeError

        if not isinstance(exc, EdgeError):
            raise
        print(f"edge-convert: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
