"""edge-train cv: K-fold cross-validation = K edge-train runs (``--folds K --fold k``, each in
its own process, so every fold starts from a fresh TensorFlow) into OUT/fold<k>, then one
results JSON: every fold's per-class figures (edge.evaluate.class_metrics of the held-out
frames, last epoch's model) and their mean +- std over folds.

    edge-train cv --folds 3 --results benchmarks/results/cv.json -- TRAIN FLAGS --out runs/cv

A fold whose metrics.json exists is not trained again (re-run the command after a stop).
``--min-areas 0,25,50`` also re-scores every fold's model on its held-out frames at each
minimum component area (model-input px, all classes): how the per-frame detection and
false-positive rates depend on it. A value picked from that sweep is picked on the held-out
folds: report it as such.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from edge import clikit
from edge.errors import UserInputError
from edge.fsutil import write_json_atomic

FOLD_DIR = "fold{}"
SUMMED = ("tp", "fn", "fp", "tn")  # frame counts: added over folds
AVERAGED = ("per_image_dice", "pooled_dice", "detection_rate", "false_positive_rate")


def cv_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-train cv", formatter_class=clikit.HelpFormatter,
                                description="K-fold cross-validation: K edge-train runs on "
                                            "the same folds + one results JSON.")
    p.add_argument("--folds", type=int, default=5, help="K (at least 2)")
    p.add_argument("--results", type=str, required=True, help="results JSON to write")
    p.add_argument("--label", type=str, default="", help="name of this model in the results")
    p.add_argument("--min-areas", type=str, default="",
                   help="also re-score each fold at these minimum areas, e.g. 0,25,50")
    p.add_argument("train_args", nargs=argparse.REMAINDER,
                   help="after --: the edge-train flags (--data, --out, ...)")
    return p


def _out_of(train_args: list[str]) -> Path:
    if "--out" not in train_args:
        raise UserInputError("edge-train cv: pass --out RUNS among the edge-train flags")
    return Path(train_args[train_args.index("--out") + 1])


def _stats(values: list) -> dict:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "std": None}
    return {"mean": float(np.mean(vals)), "std": float(np.std(vals))}


def summarize_folds(folds: list[dict]) -> dict:
    """Per class: mean/std over folds of the rates and Dice, and the frame counts summed
    (with the pooled detection / false-positive rates they give)."""
    names = list(folds[0]["classes"])
    out = {}
    for name in names:
        rows = [f["classes"][name] for f in folds]
        summary = {k: _stats([r[k] for r in rows]) for k in AVERAGED}
        counts = {k: int(sum(r[k] for r in rows)) for k in SUMMED}
        tp, fn, fp, tn = (counts[k] for k in SUMMED)
        summary["counts"] = counts
        summary["all_folds_detection_rate"] = tp / (tp + fn) if tp + fn else None
        summary["all_folds_false_positive_rate"] = fp / (fp + tn) if fp + tn else None
        out[name] = summary
    return out


def _run_fold(train_args: list[str], out: Path, folds: int, k: int) -> dict:
    fold_out = out / FOLD_DIR.format(k)
    metrics = fold_out / "metrics.json"
    if not metrics.is_file():
        args = list(train_args)
        args[args.index("--out") + 1] = str(fold_out)
        cmd = [sys.executable, "-m", "train.cli", *args, "--folds", str(folds), "--fold", str(k)]
        print("edge-train cv:", " ".join(cmd), flush=True)
        rc = subprocess.call(cmd)
        if rc != 0:
            raise RuntimeError(f"fold {k} failed (exit {rc}); see its output above")
    return json.loads(metrics.read_text(encoding="utf-8"))


def held_out_probs(fold_out: Path):
    """(frames, class list, (N, H, W, C) probabilities) of a fold's model on its held-out
    frames, read back from the fold's run folder."""
    from edge.evaluate import score_classes
    from edge.postprocess import PostprocessConfig
    from train import datasets
    from train.classes import class_ids
    from train.config import read_run
    from train.modelio import KerasBackend

    cfg = read_run(fold_out).config
    samples = datasets.find_samples(cfg.data, cfg.layout, cfg.nerve_class, cfg.subjects_csv)
    _, held = datasets.split_fold(samples, cfg.folds, cfg.fold, cfg.seed)
    classes = cfg.class_list
    frames = datasets.load_labelled(held, cfg.preprocess, cfg.nerve_class, cfg.cache_dir,
                                    cfg.resize_masks, class_ids(classes))
    post = PostprocessConfig(threshold=cfg.threshold, min_area=0)
    ev = score_classes(KerasBackend.open(fold_out / "model.keras"), frames, cfg.preprocess,
                       classes, [post] * len(classes), keep_prob=True)
    return frames, classes, ev.prob, cfg.threshold


def sweep_min_area(fold_outs: list[Path], min_areas: list[int]) -> dict:
    """min area -> summarize_folds of every fold re-decided at that area (same probs)."""
    from edge.evaluate import class_metrics
    from edge.postprocess import PostprocessConfig, decide

    per_area: dict[int, list] = {a: [] for a in min_areas}
    for fold_out in fold_outs:
        frames, classes, prob, threshold = held_out_probs(fold_out)
        for a in min_areas:
            post = PostprocessConfig(threshold=threshold, min_area=a)
            fold = {}
            for k, c in enumerate(classes):
                masks = np.stack([decide(p[..., k], None, post) for p in prob])
                fold[c["name"]] = class_metrics(frames.labels[..., k], masks)
            per_area[a].append({"classes": fold})
    return {str(a): summarize_folds(rows) for a, rows in per_area.items()}


def run_cv(folds: int, train_args: list[str], results: Path, label: str = "",
           min_areas: list[int] | None = None) -> dict:
    if folds < 2:
        raise UserInputError(f"--folds {folds}: cross-validation needs at least 2 folds")
    out = _out_of(train_args)
    fold_metrics = [_run_fold(train_args, out, folds, k) for k in range(folds)]
    keep = ("classes", "epochs_run", "wall_s", "n_images", "threshold", "min_area")
    from train.datasets import portable_path

    shown = [portable_path(v) if Path(v).is_absolute() else v for v in train_args]
    result = {"label": label, "folds": folds, "train_args": shown,  # no build-machine paths
              "per_fold": [{k: m.get(k) for k in keep} for m in fold_metrics],
              "summary": summarize_folds(fold_metrics)}
    if min_areas:
        result["min_area_sweep"] = sweep_min_area(
            [out / FOLD_DIR.format(k) for k in range(folds)], min_areas)
    write_json_atomic(results, result)
    return result


def main(argv: list[str]) -> int:
    a = cv_parser().parse_args(argv)
    train_args = a.train_args[1:] if a.train_args[:1] == ["--"] else a.train_args
    areas = [int(v) for v in a.min_areas.split(",") if v.strip()]
    result = run_cv(a.folds, train_args, Path(a.results), a.label, areas)
    for name, s in result["summary"].items():
        d, r = s["per_image_dice"], s["all_folds_detection_rate"]
        print(f"{name}: per-image Dice {d['mean']:.4f} +- {d['std']:.4f}, detection {r}, "
              f"false positives {s['all_folds_false_positive_rate']} -> {a.results}")
    return clikit.EXIT_OK
