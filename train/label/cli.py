"""edge-train select and edge-train label push|pull|export|import: argparse only, then the
library (train.label.*). No TensorFlow is imported on these paths (tests/label checks it)."""

from __future__ import annotations

import argparse

from edge import clikit

SELECT_EXAMPLES = """examples:
  edge-train select --frames frames/ --model default --n 100 --out chosen/
  edge-train select --frames frames/ --model runs/clinic/model_int8.tflite --n 40 \\
                    --empty-share 0.3 --out chosen/
"""
LABEL_EXAMPLES = """examples (Label Studio on this laptop: docs/clinic.md):
  edge-train label push --frames chosen/ --model default --url http://localhost:8080 --token T
  edge-train label pull --url http://localhost:8080 --token T --out data/clinic
  edge-train label export --format coco --frames chosen/ --model default --out chosen.json
  edge-train label import --format coco chosen.json --images chosen/ --out data/clinic
  edge-train label import --format coco cvat.json --images images/ --out data/clinic \\
                          --class-map Nerve=1
"""


def select_parser() -> argparse.ArgumentParser:
    from train.label.select import DEFAULT_DUP_THRESHOLD, DEFAULT_EMPTY_SHARE

    p = clikit.ArgumentParser(prog="edge-train select", epilog=SELECT_EXAMPLES,
                              formatter_class=clikit.HelpFormatter,
                              description="Choose the frames worth labelling: near-duplicates "
                                          "dropped, the model's unsure frames first, a share "
                                          "of frames where it sees no nerve; a CSV says why.")
    p.add_argument("--frames", type=str, required=True, help="folder of frames (edge-run "
                   "--capture's)")
    p.add_argument("--model", type=str, default="default",
                   help=".tflite/.onnx model that judges the frames (default: default, the "
                        "packaged one)")
    p.add_argument("--n", type=clikit.positive_int, default=100,
                   help="frames to choose (default 100)")
    p.add_argument("--out", type=str, required=True,
                   help="new folder: the chosen frames + selection.csv")
    p.add_argument("--empty-share", type=clikit.fraction, default=DEFAULT_EMPTY_SHARE,
                   help=f"share of the choice kept for frames the model sees no nerve in "
                        f"(default {DEFAULT_EMPTY_SHARE})")
    p.add_argument("--dup-threshold", type=clikit.non_negative_float,
                   default=DEFAULT_DUP_THRESHOLD,
                   help="near-duplicate below this mean gray difference at 16x16 px "
                        f"(default {DEFAULT_DUP_THRESHOLD:g}; 0 keeps all)")
    return p


def _server_flags(p: argparse.ArgumentParser) -> None:
    from train.label.labelstudio import DEFAULT_PROJECT

    p.add_argument("--url", type=str, required=True, help="Label Studio, e.g. "
                   "http://localhost:8080")
    p.add_argument("--token", type=str, required=True,
                   help="your access token (Account & Settings): personal or legacy")
    p.add_argument("--project", type=str, default=DEFAULT_PROJECT,
                   help=f"project title (default {DEFAULT_PROJECT!r})")


def _model_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--model", type=str, default="default",
                   help=f"{what} (default: default, the packaged model)")


def _class_map_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--class-map", type=str, default=None,
                   help="label names -> class ids, e.g. Nerve=1,Artery=2 (default: the "
                        "model's class names)")


def label_parser() -> argparse.ArgumentParser:
    p = clikit.ArgumentParser(prog="edge-train label", epilog=LABEL_EXAMPLES,
                              formatter_class=clikit.HelpFormatter,
                              description="Pre-label frames with the model and exchange them "
                                          "with Label Studio or any COCO tool.")
    sub = p.add_subparsers(dest="action", required=True, metavar="push|pull|export|import")
    push = sub.add_parser("push", help="upload frames + the model's masks to Label Studio")
    push.add_argument("--frames", type=str, required=True, help="folder of frames")
    _model_flag(push, "model whose masks are the pre-labels and whose classes are the labels")
    _server_flags(push)
    pull = sub.add_parser("pull", help="annotated tasks -> images/ + masks/ (class ids)")
    _server_flags(pull)
    _model_flag(pull, "model whose class names give the mask ids")
    _class_map_flag(pull)
    pull.add_argument("--out", type=str, required=True, help="new folder: images/ + masks/")
    export = sub.add_parser("export", help="frames + the model's masks -> a COCO file")
    export.add_argument("--format", choices=("coco",), default="coco",
                        help="file format (default coco)")
    export.add_argument("--frames", type=str, required=True, help="folder of frames")
    _model_flag(export, "model whose masks are written")
    export.add_argument("--encoding", choices=("polygon", "rle"), default="polygon",
                        help="how masks are written (default polygon; rle is exact)")
    export.add_argument("--out", type=str, required=True, help="the COCO .json to write")
    imp = sub.add_parser("import", help="a COCO file -> images/ + masks/ (class ids)")
    imp.add_argument("--format", choices=("coco",), default="coco",
                     help="file format (default coco)")
    imp.add_argument("file", type=str, help="the COCO .json (polygons and RLE both read)")
    imp.add_argument("--images", type=str, required=True,
                     help="folder the file's image names are relative to")
    _model_flag(imp, "model whose class names give the mask ids")
    _class_map_flag(imp)
    imp.add_argument("--out", type=str, required=True, help="new folder: images/ + masks/")
    return p


def select_main(argv: list[str]) -> int:
    from train.label.select import SelectConfig, select

    a = select_parser().parse_args(argv)
    s = select(SelectConfig(frames=a.frames, out=a.out, model=a.model, n=a.n,
                            dup_threshold=a.dup_threshold, empty_share=a.empty_share))
    print(f"edge-train select: {s['frames']} frames, {s['duplicates']} near-duplicates dropped, "
          f"{s['empty_seen']} of the rest with no nerve seen by the model; {s['selected']} "
          f"selected ({s['selected_empty']} with no nerve seen) -> {s['out']} (why: "
          f"selection.csv)")
    return clikit.EXIT_OK


def _push(a) -> str:
    from train.label.labelstudio import LSConfig, push

    s = push(LSConfig(a.url, a.token, a.project, a.model), a.frames)
    return (f"{'created' if s['created'] else 'reused'} project {s['project']!r}: "
            f"{s['uploaded']} frames uploaded with pre-labels ({s['prelabelled_empty']} with "
            f"no nerve seen), {s['already_there']} already there -> {s['url']}")


def _pull(a) -> str:
    from train.label.labelstudio import LSConfig, pull

    s = pull(LSConfig(a.url, a.token, a.project, a.model), a.out, a.class_map)
    return (f"{s['frames']} annotated frames ({s['empty']} with no nerve) -> {s['out']}; "
            f"left out: {s['not_annotated']} not annotated yet, {s['skipped']} skipped")


def _export(a) -> str:
    from train.label.coco import export_coco

    s = export_coco(a.frames, a.model, a.out, a.encoding)
    return (f"{s['images']} frames ({s['empty']} with no nerve seen), {s['annotations']} "
            f"regions -> {s['out']}")


def _import(a) -> str:
    from train.label.coco import import_coco

    s = import_coco(a.file, a.images, a.out, a.model, a.class_map)
    ignored = f", {s['ignored']} of categories that name no class left out" if s["ignored"] else ""
    return (f"{s['frames']} frames ({s['empty']} with no nerve), {s['annotations']} regions "
            f"({s['crowd']} iscrowd){ignored} -> {s['out']}")


ACTIONS = {"push": _push, "pull": _pull, "export": _export, "import": _import}


def label_main(argv: list[str]) -> int:
    a = label_parser().parse_args(argv)
    print(f"edge-train label {a.action}: {ACTIONS[a.action](a)}")
    return clikit.EXIT_OK
