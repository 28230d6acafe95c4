"""edge-bench: honest, machine-readable benchmarks of nerve-edge models.

argparse lives here only; every subcommand builds a frozen config and calls the library.
The CLI contract is edge.clikit's: exit 0 ok, 2 bad input (missing model/data, bad flag, a
missing optional package: one line with the install command), 1 runtime failure (or every
variant failed), 130 interrupted (Ctrl-C or SIGTERM; no partial result file is left).
"""

from __future__ import annotations

# First: Ctrl-C and SIGTERM end the program with 130 and one line from here on, also during
# the heavy imports below and in the body (numpy, OpenCV, TensorFlow): edge.signals.
from edge import signals

signals.install_if_program("edge-bench", __name__)

import argparse
import json
import shlex
import sys
from collections.abc import Sequence

from edge import clikit, log
from edge.clikit import int_list, positive_int, str_list
from edge.errors import UserInputError

EXAMPLES = """\
examples (DATA: a prepared data folder, see docs/data.md):
  edge-bench latency --models edge/models/nerve_fixture_int8.tflite \\
      edge/models/nerve_fixture.onnx --threads 1,2 --out results/latency.json
  edge-bench ceiling --threads 1,2 --out results/ceiling.json
  edge-bench accuracy --models runs/a/model_int8.tflite --data data/kaggle-nerve/train \\
      --split runs/a/split.json --out results/accuracy.json
  edge-bench pipeline --models edge/models/nerve_fixture_int8.tflite --source phantom \\
      --max-frames 300 --out results/pipeline.json
  edge-bench compare --models runs/a/model.keras runs/a/model_int8.tflite runs/a/model.onnx \\
      --data data/kaggle-nerve/train --split runs/a/split.json --pipeline \\
      --out benchmarks/results/compare.json      # also writes compare.md and compare.png
  edge-bench macs --models runs/a/model_int8.tflite runs/a/model.onnx
  edge-bench soak --minutes 20 --source phantom --threads 1 --out results/soak.json
  edge-bench soak --minutes 20 --model edge/models/nerve_vessel_int8.tflite --out results/soak.json
  edge-bench soak --minutes 20 --dicom cine.dcm --out results/soak.json   # areas in mm2
"""


def _add_out(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--out", type=str, default=None,
                   help=f"write the {what} JSON here (atomically; None: print it)")


def _add_models(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", type=str, nargs="+", required=True,
                   help="model files: .tflite, .onnx, .keras (Keras needs TensorFlow)")


def _add_timing(p: argparse.ArgumentParser) -> None:
    from benchmarks.latency import DEFAULT_REPEATS, DEFAULT_RUNS, DEFAULT_WARMUP

    p.add_argument("--threads", type=int_list, default=(1, 2),
                   help="comma-separated thread counts")
    p.add_argument("--warmup", type=clikit.non_negative_int, default=DEFAULT_WARMUP,
                   help="untimed runs first")
    p.add_argument("--runs", type=positive_int, default=DEFAULT_RUNS,
                   help="timed runs per repeat")
    p.add_argument("--repeats", type=positive_int, default=DEFAULT_REPEATS,
                   help="repeats; figures are their medians")
    p.add_argument("--in-process", action="store_true",
                   help="measure in this process (quick checks; peak RSS is then shared)")


def _add_data(p: argparse.ArgumentParser, required: bool) -> None:
    from train.cli import add_data_flags  # argparse only: no TensorFlow

    add_data_flags(p, required)
    p.add_argument("--split", type=str, default=None,
                   help="a training run's split.json: evaluate its val_subjects only")
    p.add_argument("--subjects", type=str_list, default=None,
                   help="comma-separated subject ids to evaluate (instead of --split)")
    p.add_argument("--max-images", type=positive_int, default=None,
                   help="evaluate only the first N frames (quick checks)")
    clikit.add_postprocess_flags(p, "each model's sidecar")


def _add_pipeline_source(p: argparse.ArgumentParser) -> None:
    from benchmarks.pipeline import DEFAULT_MAX_FRAMES, DEFAULT_SOURCE

    p.add_argument("--source", type=str, default=DEFAULT_SOURCE,
                   help="phantom, a video file or an image folder")
    p.add_argument("--max-frames", type=positive_int, default=DEFAULT_MAX_FRAMES,
                   help="frames per model")


def build_parser() -> argparse.ArgumentParser:
    parser = clikit.ArgumentParser(
        prog="edge-bench", description=__doc__.splitlines()[0], epilog=EXAMPLES,
        formatter_class=clikit.HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="what to measure (edge-bench COMMAND --help)")
    fmt = clikit.HelpFormatter

    p = sub.add_parser("latency", help="inference latency per model x thread count",
                       epilog=EXAMPLES, formatter_class=fmt)
    _add_models(p)
    _add_timing(p)
    p.add_argument("--backend", type=str, choices=("tflite", "onnx", "keras"), default=None,
                   help="force a backend (default: from the file suffix)")
    p.add_argument("--ceiling", action="store_true",
                   help="also measure the ceilings and report each model's share of them "
                   "(of the model-shaped one, and of the wide one)")
    _add_out(p, "latency")

    p = sub.add_parser("ceiling", help="this machine's practical conv GMAC/s: for the "
                       "default model's own (thin) layer shapes, and for one wide conv",
                       epilog=EXAMPLES, formatter_class=fmt)
    p.add_argument("--threads", type=int_list, default=(1,),
                   help="comma-separated thread counts")
    p.add_argument("--backends", type=str_list, default=("tflite", "onnx"),
                   help="runtimes to measure")
    p.add_argument("--shapes", type=str_list, default=("model", "wide"),
                   help="model: the default model's convolutions; wide: one 3x3 conv "
                   "64->64 at 128x128 (the machine's peak)")
    p.add_argument("--runs", type=positive_int, default=30, help="timed runs")
    p.add_argument("--repeats", type=positive_int, default=3, help="repeats")
    _add_out(p, "ceiling")

    p = sub.add_parser("accuracy", help="Dice & co. through edge's own processing",
                       epilog=EXAMPLES, formatter_class=fmt)
    _add_models(p)
    _add_data(p, required=True)
    p.add_argument("--threads", type=positive_int, default=1, help="interpreter threads")
    _add_out(p, "accuracy")

    p = sub.add_parser("pipeline", help="end-to-end FPS and per-stage times of edge's loop",
                       epilog=EXAMPLES, formatter_class=fmt)
    _add_models(p)
    _add_pipeline_source(p)
    p.add_argument("--threads", type=positive_int, default=1, help="interpreter threads")
    _add_out(p, "pipeline")

    p = sub.add_parser("compare", help="all of the above, side by side (+ .md table, .png plot)",
                       epilog=EXAMPLES, formatter_class=fmt)
    _add_models(p)
    _add_timing(p)
    _add_data(p, required=False)
    p.add_argument("--pipeline", action="store_true",
                   help="also run the end-to-end loop for each model (first thread count)")
    _add_pipeline_source(p)
    p.add_argument("--no-ceiling", action="store_true", help="skip the ceiling measurement")
    _add_out(p, "comparison")

    p = sub.add_parser("macs", help="multiply-accumulates per inference of each model",
                       epilog=EXAMPLES, formatter_class=fmt)
    _add_models(p)
    _add_out(p, "MACs")

    p = sub.add_parser("soak", help="run edge-run for minutes: RSS slope (MB/h) and FPS",
                       epilog=EXAMPLES, formatter_class=fmt)
    _add_soak(p)
    _add_out(p, "soak")
    for p in sub.choices.values():  # after the subcommand: edge-bench latency --debug
        clikit.add_common_flags(p, verbose=True)
    return parser


def _add_soak(p: argparse.ArgumentParser) -> None:
    from benchmarks.soak import BLOCK_S, SAMPLE_S

    p.add_argument("--minutes", type=float, required=True, help="how long edge-run runs")
    p.add_argument("--model", type=str, default=None, help="model file (default: packaged)")
    p.add_argument("--threads", type=positive_int, default=1, help="interpreter threads")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--source", type=str, choices=["phantom"], default=None,
                     help="built-in phantom (the default source)")
    src.add_argument("--video", type=str, default=None, help="video file or stream URL")
    src.add_argument("--images", type=str, default=None, help="image folder")
    src.add_argument("--camera", type=str, default=None, help="camera index or device")
    src.add_argument("--dicom", type=str, default=None,
                     help="DICOM file or folder (areas in mm2 when it has an ultrasound region)")
    p.add_argument("--serve", action=argparse.BooleanOptionalAction, default=True,
                   help="edge-run --serve on loopback, its status, metrics and frame asked "
                        "for at every sample like a watching browser (default on)")
    p.add_argument("--loop", action=argparse.BooleanOptionalAction, default=True,
                   help="restart video files / image folders (default on)")
    p.add_argument("--extra", type=shlex.split, default=[],
                   help='more edge-run flags, one string, e.g. "--serve 8080 --record x.mkv"')
    p.add_argument("--child", type=shlex.split, default=None,
                   help="soak this command instead of edge-run (it must print edge-run's "
                        "status lines to stderr for FPS)")
    p.add_argument("--sample-s", type=float, default=SAMPLE_S,
                   help=f"RSS sampling period, s (default {SAMPLE_S:g})")
    p.add_argument("--block-s", type=float, default=BLOCK_S,
                   help=f"FPS block length, s (default {BLOCK_S:g})")
    p.add_argument("--warmup-s", type=float, default=None,
                   help="left out of the slope, s (default: 2 min or a quarter of the run)")


def _accuracy_config(args, threads: int):
    from benchmarks.accuracy import AccuracyConfig

    if args.split and args.subjects:
        raise UserInputError("pass --split or --subjects, not both")
    return AccuracyConfig(data_dir=args.data, layout=args.layout,
                          nerve_class=args.nerve_class or 1, subjects_csv=args.subjects_csv,
                          resize_masks=args.resize_masks, split=args.split, subjects=args.subjects,
                          max_images=args.max_images, threads=threads,
                          threshold=args.threshold, min_area=args.min_area,
                          presence_threshold=args.presence_threshold)


def _say_config(command: str, cfg) -> None:
    log.note(log.config_block(f"edge-bench {command}", cfg))


def cmd_latency(args) -> dict:
    from benchmarks.ceiling import CeilingConfig, attach_fractions, run_ceiling
    from benchmarks.latency import LatencyConfig, run_latency

    cfg = LatencyConfig(threads=args.threads, backend=args.backend, warmup=args.warmup,
                        runs=args.runs, repeats=args.repeats, subprocess=not args.in_process)
    _say_config("latency", cfg)
    doc = run_latency(args.models, cfg)
    if args.ceiling:
        doc["ceiling"] = run_ceiling(CeilingConfig(threads=args.threads))
        attach_fractions(doc["results"], doc["ceiling"])
    return doc


def cmd_ceiling(args) -> dict:
    from benchmarks.ceiling import BACKENDS, CeilingConfig, check_makeable, run_ceiling
    from benchmarks.ceiling_models import SHAPE_SETS

    for flag, given, known in (("--shapes", args.shapes, SHAPE_SETS),
                               ("--backends", args.backends, BACKENDS)):
        bad = [s for s in given if s not in known]
        if bad:
            raise UserInputError(f"{flag} {','.join(bad)}: choose from {','.join(known)}")
    cfg = CeilingConfig(threads=args.threads, backends=args.backends, shapes=args.shapes,
                        runs=args.runs, repeats=args.repeats)
    check_makeable(cfg)
    _say_config("ceiling", cfg)
    return run_ceiling(cfg)


def cmd_accuracy(args) -> dict:
    from benchmarks.accuracy import run_accuracy

    cfg = _accuracy_config(args, args.threads)
    _say_config("accuracy", cfg)
    return run_accuracy(args.models, cfg)


def cmd_pipeline(args) -> dict:
    from benchmarks.pipeline import PipelineConfig, run_pipeline

    cfg = PipelineConfig(source=args.source, max_frames=args.max_frames, threads=args.threads)
    _say_config("pipeline", cfg)
    return run_pipeline(args.models, cfg)


def cmd_compare(args) -> dict:
    from benchmarks.compare import CompareConfig, run_compare
    from benchmarks.pipeline import PipelineConfig

    cfg = CompareConfig(
        threads=args.threads, warmup=args.warmup, runs=args.runs, repeats=args.repeats,
        subprocess=not args.in_process, ceiling=not args.no_ceiling,
        accuracy=_accuracy_config(args, args.threads[0]) if args.data else None,
        pipeline=PipelineConfig(source=args.source, max_frames=args.max_frames,
                                threads=args.threads[0]) if args.pipeline else None)
    _say_config("compare", cfg)
    return run_compare(args.models, cfg)


def cmd_macs(args) -> dict:
    from benchmarks.latency import describe_model
    from benchmarks.machine import describe_machine

    rows = [describe_model(m) for m in args.models]
    for r in rows:
        log.note(f"{r['model']}: {_macs_text(r)}")
    return {"kind": "macs", "machine": describe_machine(), "results": rows}


def _macs_text(row: dict) -> str:
    """One line per model: its GMAC, why they are unknown (a missing package), or its error."""
    if "error" in row:
        return f"FAILED: {row['error']}"
    if row.get("macs") is None:
        return row.get("macs_note") or "MACs not counted"
    return f"{row['macs'] / GIGA:.4f} GMAC ({row['dtype']})"


GIGA = 1e9


def cmd_soak(args) -> dict:
    from pathlib import Path

    from benchmarks.soak import (
        SERVE_SPEC,
        SoakConfig,
        build_edge_run_command,
        run_soak,
        temp_report_path,
    )

    report = None
    if args.child:
        command = tuple(args.child)
    else:
        flags = (["--video", args.video] if args.video else ["--images", args.images]
                 if args.images else ["--camera", args.camera] if args.camera
                 else ["--dicom", args.dicom] if args.dicom else ["--source", "phantom"])
        report = temp_report_path()
        command = build_edge_run_command(flags + (["--loop"] if args.loop else []), args.model,
                                         args.threads, args.extra, report,
                                         SERVE_SPEC if args.serve else None)
    cfg = SoakConfig(minutes=args.minutes, command=command, sample_s=args.sample_s,
                     block_s=args.block_s, warmup_s=args.warmup_s, report=report)
    try:
        doc = run_soak(cfg)
    finally:
        if report:
            Path(report).unlink(missing_ok=True)
    if doc["stopped_by"] == "exited by itself" and doc["exit_code"] not in (0, None):
        tail = (doc["stderr_tail"] or ["no output"])[-1]
        raise RuntimeError(f"the child failed with exit {doc['exit_code']}: {tail}")
    return doc


COMMANDS = {"latency": cmd_latency, "ceiling": cmd_ceiling, "accuracy": cmd_accuracy,
            "pipeline": cmd_pipeline, "compare": cmd_compare, "macs": cmd_macs,
            "soak": cmd_soak}


def _write(args, doc: dict) -> None:
    from benchmarks.report import write_json

    if args.out is None:
        print(json.dumps(doc, indent=2))
        return
    if args.command == "compare":
        from benchmarks.compare import write_compare

        paths = write_compare(doc, args.out)
        log.note("edge-bench: wrote " + ", ".join(str(p) for p in paths.values()))
        return
    log.note(f"edge-bench: wrote {write_json(args.out, doc)}")


def _all_failed(doc: dict) -> bool:
    rows = doc.get("variants") or doc.get("results") or []
    return bool(rows) and all(r.get("status") == "failed" or "error" in r for r in rows)


def check_models_exist(models: Sequence[str] | None) -> None:
    """A typo in a path is a user error (exit 2), not a failed variant."""
    from pathlib import Path

    missing = [m for m in models or () if not Path(m).is_file()]
    if missing:
        raise UserInputError(f"model file(s) not found: {', '.join(missing)}; check --models")


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    clikit.quiet_tensorflow(getattr(args, "verbose", False))
    check_models_exist(getattr(args, "models", None))
    doc = COMMANDS[args.command](args)
    _write(args, doc)
    if _all_failed(doc):
        log.note(f"edge-bench {args.command}: every model failed (see the errors above)")
        return clikit.EXIT_RUNTIME
    return clikit.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return signals.finish(clikit.run_cli("edge-bench", _main, argv))  # a program leaves here


if __name__ == "__main__":
    sys.exit(main())
