"""The parsers of edge-train's other subcommands (prepare, cv, export-init): argparse only,
each calling its module's library function. train/cli.py imports this lazily, per
subcommand, so none of them loads TensorFlow before it is needed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge import clikit
from edge.clikit import ArgumentParser, add_common_flags
from train import cv, export_init, prepare

# ---------------------------------------------------------------- edge-train prepare

PREPARE_EXAMPLES = """examples:
  edge-train prepare kaggle --src ~/Downloads/ultrasound-nerve-segmentation --out data/kaggle-nerve
  edge-train prepare kaggle --src DOWNLOAD --out data/kaggle-nerve \\
             --frames docs/data/kaggle-nerve-2036.txt     # the shipped model's 2,036 frames
  edge-train prepare usgra --src usgra-seg --out data/usgra-seg
(details: docs/data.md)
"""


def prepare_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="edge-train prepare", epilog=PREPARE_EXAMPLES,
                                description="Turn a public download into a layout edge-train "
                                            "reads (docs/data.md).",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="dataset", required=True, metavar="{kaggle,usgra}")
    k = sub.add_parser("kaggle", help="Kaggle Ultrasound Nerve Segmentation training download")
    k.add_argument("--src", type=Path, required=True,
                   help="the unzipped download (holding train/ and train_masks.csv)")
    k.add_argument("--out", type=Path, required=True, help="new folder; gets train/ + the csv")
    k.add_argument("--width", type=int, default=prepare.DEFAULT_WIDTH,
                   help=f"output width in px, aspect kept (default {prepare.DEFAULT_WIDTH}: "
                        f"256x185)")
    k.add_argument("--masks", type=str, choices=prepare.MASK_SOURCES, default="auto",
                   help="mask source: auto = _mask.tif files, RLE where one is missing "
                        "(default auto)")
    k.add_argument("--jpeg-quality", type=int, default=0,
                   help="JPEG round trip after resizing at this quality (default 0 = off)")
    k.add_argument("--frames", type=Path, default=None,
                   help="keep only the SUBJECT_IMAGE ids listed in this file (default: all)")
    u = sub.add_parser("usgra", help="a clone of the tmkand/usgra-seg repository")
    u.add_argument("--src", type=Path, required=True, help="the clone (holding dataset/)")
    u.add_argument("--out", type=Path, required=True, help="new folder; gets images/ + masks/")
    u.add_argument("--with-test", action="store_true",
                   help="also take dataset/test/ (the authors' 40 held-out pairs; default off)")
    u.add_argument("--nerve-class", type=int, default=1,
                   help="class id of the nerve in the masks (default 1)")
    for parser in (p, k, u):
        add_common_flags(parser)
    return p


def prepare_main(argv: list[str]) -> int:
    """``edge-train prepare ...``; raises DataError (exit 2) on bad input."""
    a = prepare_parser().parse_args(argv)
    if a.dataset == "kaggle":
        prepare.prepare_kaggle(prepare.KaggleOptions(
            src=a.src, out=a.out, width=a.width, masks=a.masks, jpeg_quality=a.jpeg_quality,
            frames=a.frames))
    else:
        prepare.prepare_usgra(a.src, a.out, with_test=a.with_test, nerve_class=a.nerve_class)
    return 0


# ---------------------------------------------------------------- edge-train cv


def cv_parser() -> argparse.ArgumentParser:
    p = clikit.ArgumentParser(prog="edge-train cv", formatter_class=clikit.HelpFormatter,
                                description="K-fold cross-validation: K edge-train runs on "
                                            "the same folds + one results JSON.")
    p.add_argument("--folds", type=int, default=5, help="K (at least 2)")
    p.add_argument("--results", type=str, required=True, help="results JSON to write")
    p.add_argument("--label", type=str, default="", help="name of this model in the results")
    p.add_argument("--min-areas", type=str, default="",
                   help="also re-score each fold at these minimum areas, e.g. 0,25,50")
    p.add_argument("--thresholds", type=str, default="",
                   help="with --min-areas: also at these probability thresholds, e.g. "
                        "0.5,0.7 (default: the run's threshold)")
    p.add_argument("--min-detection", type=float, default=None,
                   help="name the swept setting with the fewest false positives whose "
                        "detection rate stays >= this, e.g. 0.95")
    p.add_argument("--int8", action="store_true",
                   help="also convert each fold to int8 (edge-convert) and score it")
    p.add_argument("train_args", nargs=argparse.REMAINDER,
                   help="after --: the edge-train flags (--data, --out, ...)")
    return p


def cv_main(argv: list[str]) -> int:
    a = cv_parser().parse_args(argv)
    train_args = a.train_args[1:] if a.train_args[:1] == ["--"] else a.train_args
    areas = [int(v) for v in a.min_areas.split(",") if v.strip()]
    thresholds = [float(v) for v in a.thresholds.split(",") if v.strip()]
    result = cv.run_cv(a.folds, train_args, Path(a.results), a.label, areas, thresholds,
                    a.min_detection, a.int8)
    for name, s in result["summary"].items():
        d, r = s["per_image_dice"], s["all_folds_detection_rate"]
        print(f"{name}: per-image Dice {d['mean']:.4f} +- {d['std']:.4f}, detection {r}, "
              f"false positives {s['all_folds_false_positive_rate']} -> {a.results}")
    for name, drop in result.get("int8_drop", {}).items():
        d = result["int8_summary"][name]["per_image_dice"]
        print(f"{name} int8: per-image Dice {d['mean']:.4f} +- {d['std']:.4f} "
              f"(drop {drop:+.4f})")
    if "chosen_decision" in result:
        c = result["chosen_decision"]
        print("decision:", "none reaches --min-detection" if c is None else
              f"{c['key']}: detection {c['all_folds_detection_rate']:.3f}, false positives "
              f"{c['all_folds_false_positive_rate']}")
    return clikit.EXIT_OK


# ---------------------------------------------------------------- edge-train export-init


def export_parser() -> argparse.ArgumentParser:
    p = clikit.ArgumentParser(prog="edge-train export-init",
                                formatter_class=clikit.HelpFormatter,
                                description="Write a run's float Keras model + its sidecar "
                                            "(architecture, input, provenance): a starting "
                                            "point for edge-train --init-weights FILE.")
    p.add_argument("run", type=str, help="edge-train run folder (model.keras + config.json)")
    p.add_argument("--out", type=str, required=True, help="the .keras file to write (its "
                   "sidecar: same name, .json)")
    p.add_argument("--name", type=str, default=None, help="model name (None: the run's)")
    p.add_argument("--model-version", type=str, default="1", help="sidecar version")
    p.add_argument("--frame-list", type=str, default=None,
                   help="the training frame list to record, e.g. docs/data/kaggle-nerve.txt")
    p.add_argument("--note", type=str, default=None, help="free text for the provenance")
    clikit.add_common_flags(p, verbose=False)
    return p


def export_main(argv: list[str]) -> int:
    args = export_parser().parse_args(argv)
    out = export_init.export_init(args, argv)
    mb = out.stat().st_size / 1e6
    budget = export_init.MAX_SHIPPED_MB
    note = f" (over the {budget:g} MB package budget)" if mb > budget else ""
    print(f"wrote {out} ({mb:.2f} MB{note}) and {out.with_suffix('.json')}")
    return clikit.EXIT_OK
