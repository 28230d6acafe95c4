"""edge-train cv: K-fold cross-validation = K edge-train runs (``--folds K --fold k``, each in
its own process, so every fold starts from a fresh TensorFlow) into OUT/fold<k>, then one
results JSON: every fold's per-class figures (edge.model.evaluate.class_metrics of the held-out
frames, last epoch's model) and their mean +- std over folds.

    edge-train cv --folds 3 --results benchmarks/results/cv.json -- TRAIN FLAGS --out runs/cv

A fold whose metrics.json exists is not trained again (re-run the command after a stop).
``--min-areas 0,25,50`` (and ``--thresholds 0.5,0.7``) also re-scores every fold's model on
its held-out frames at each minimum component area (model-input px, all classes) and
probability threshold: how the per-frame detection and false-positive rates depend on them.
With ``--min-detection 0.95`` the results name the setting with the fewest false positives
whose detection (all folds' frames together) stays at or above it, ties to the higher
detection, then per-image Dice. A setting picked from that sweep is picked on the
held-out folds: report it as such.

U-Net++ folds (``--arch unetpp``) are also scored cut to heads 1..K (``heads_sweep``: what
``edge-convert --heads K`` would ship, float), with the MACs of each cut.

``--int8`` converts every fold's model with edge-convert (int8, no pruning, gated on the
fold's own held-out frames) into OUT/fold<k>/export and scores the int8 model on the held-out
frames too: the results then hold the int8 figures, their mean +- std, and the drop from the
float model; the sweep then runs on the int8 models (what a device runs).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from edge.errors import UserInputError
from edge.fsutil import check_writable_file, write_json_atomic
from edge.log import say
from edge.model.postprocess import PostprocessConfig

FOLD_DIR = "fold{}"
SUMMED = ("tp", "fn", "fp", "tn")  # frame counts: added over folds
AVERAGED = ("per_image_dice", "pooled_dice", "detection_rate", "false_positive_rate")


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
        say("edge-train cv: " + " ".join(cmd))
        rc = subprocess.call(cmd)
        if rc != 0:
            raise RuntimeError(f"fold {k} failed (exit {rc}); see its output above")
    return json.loads(metrics.read_text(encoding="utf-8"))


def int8_path(fold_out: Path) -> Path:
    return fold_out / "export" / f"{fold_out.name}-int8.tflite"


def convert_fold(fold_out: Path) -> Path:
    """edge-convert a fold's model to int8 (no pruning; the gate runs on the fold's held-out
    frames and only records: a fold model is measured, not shipped); kept when it exists."""
    target = int8_path(fold_out)
    if not target.is_file():
        cmd = [sys.executable, "-m", "convert.cli", str(fold_out), "--out",
               str(fold_out / "export"), "--formats", "int8", "--prune", "0",
               "--name", fold_out.name,
               # a measurement, not a release: the gate records, the results judge
               "--allow-low-dice", "--max-dice-drop", "1", "--max-drift", "1"]
        say("edge-train cv: " + " ".join(cmd))
        rc = subprocess.call(cmd)
        if rc != 0 or not target.is_file():
            raise RuntimeError(f"converting {fold_out} failed (exit {rc}); see its output")
    return target


@functools.cache
def held_out_frames(fold_out: Path):
    """(run config, held-out frames, class list) of a fold, decoded once per fold."""
    from train import datasets
    from train.classes import class_ids
    from train.config import read_run

    cfg = read_run(fold_out).config
    samples = datasets.find_samples(cfg.data, cfg.layout, cfg.nerve_class, cfg.subjects_csv)
    _, held = datasets.split_fold(samples, cfg.folds, cfg.fold, cfg.seed)
    classes = cfg.class_list
    frames = datasets.load_labelled(held, cfg.preprocess, cfg.nerve_class, cfg.cache_dir,
                                    cfg.resize_masks, class_ids(classes) if cfg.classes else None)
    return cfg, frames, classes


def held_out_probs(fold_out: Path, model: Path | None = None, backend=None):
    """(frames, class list, (N, H, W, C) probabilities, run threshold) of a fold's model (or
    ``model``, e.g. its int8 file, or an open ``backend``) on its held-out frames."""
    from edge.model.evaluate import score
    from edge.model.settings import Overrides
    from train.modelio import config_meta, open_model, seg_model

    cfg, frames, classes = held_out_frames(fold_out)
    backend = backend or open_model(model or fold_out / "model.keras")
    scored = seg_model(backend, config_meta(cfg), Overrides(threshold=cfg.threshold, min_area=0))
    ev = score(scored, frames, keep_prob=True)
    return frames, classes, ev.prob, cfg.threshold


def _decided(frames, classes, prob, post) -> dict:
    from edge.model.evaluate import class_metrics
    from edge.model.postprocess import decide

    labels = frames.labels if frames.labels.ndim == 4 else frames.labels[..., None]
    return {"classes": {c["name"]: class_metrics(
        labels[..., k], np.stack([decide(p[..., k], None, post) for p in prob]))
        for k, c in enumerate(classes)}}


def setting_key(threshold: float, min_area: int) -> str:
    return f"threshold={threshold:g},min_area={min_area}"


def sweep_decision(fold_probs: list[tuple], min_areas: list[int],
                   thresholds: list[float] | None = None) -> dict:
    """setting_key(t, a) -> summarize_folds of every fold re-decided at threshold t and min
    area a. fold_probs: held_out_probs of each fold (one forward pass per fold)."""
    rows: dict[str, list] = {}
    for frames, classes, prob, run_t in fold_probs:
        for t in thresholds or [run_t]:
            for a in min_areas:
                post = PostprocessConfig(threshold=t, min_area=a)
                rows.setdefault(setting_key(t, a), []).append(
                    _decided(frames, classes, prob, post))
    return {key: summarize_folds(r) for key, r in rows.items()}


def choose_setting(sweep: dict, min_detection: float, name: str) -> dict | None:
    """The swept setting of class ``name`` with the fewest false positives (all folds'
    frames) whose detection stays >= min_detection; ties to the higher detection, then the
    higher per-image Dice (a missed nerve costs more than a slightly looser outline)."""
    ok = [(s[name]["all_folds_false_positive_rate"] or 0.0,
           -(s[name]["all_folds_detection_rate"] or 0.0),
           -(s[name]["per_image_dice"]["mean"] or 0.0), key)
          for key, s in sweep.items()
          if (s[name]["all_folds_detection_rate"] or 0.0) >= min_detection]
    if not ok:
        return None
    *_, key = min(ok)
    t, a = (part.split("=")[1] for part in key.split(","))
    return {"class": name, "key": key, "threshold": float(t), "min_area": int(a),
            "min_detection": min_detection, **sweep[key][name]}


def heads_sweep(fold_outs: list[Path]) -> dict:
    """U-Net++ folds: K -> summarize_folds of every fold's float model cut to heads 1..K
    (edge-convert --heads K), with its MACs; {} for other models."""
    from train.model import count_macs, heads_of, select_heads
    from train.modelio import KerasBackend, load_keras

    models = [load_keras(f / "model.keras") for f in fold_outs]
    n_heads = len(heads_of(models[0]))
    if n_heads < 2:
        return {}
    out = {}
    for k in range(1, n_heads + 1):
        rows, macs = [], 0
        for fold_out, model in zip(fold_outs, models, strict=True):
            cut = select_heads(model, k)
            macs = count_macs(cut)
            frames, classes, prob, t = held_out_probs(fold_out, backend=KerasBackend(cut))
            rows.append(_decided(frames, classes, prob, PostprocessConfig(threshold=t)))
        out[str(k)] = {"gmac": macs / 1e9, **summarize_folds(rows)}
    return out


def run_cv(folds: int, train_args: list[str], results: Path, label: str = "",
           min_areas: list[int] | None = None, thresholds: list[float] | None = None,
           min_detection: float | None = None, int8: bool = False) -> dict:
    if folds < 2:
        raise UserInputError(f"--folds {folds}: cross-validation needs at least 2 folds")
    check_writable_file(results, "--results")  # before hours of training, not after
    held_out_frames.cache_clear()  # frames are decoded once per fold within this run
    out = _out_of(train_args)
    fold_metrics = [_run_fold(train_args, out, folds, k) for k in range(folds)]
    # per_image_dice: over every held-out frame, an empty frame scoring 1 when left empty
    # (edge.model.evaluate.score); the per-class figures in "classes" count nerve frames only
    keep = ("classes", "epochs_run", "wall_s", "n_images", "threshold", "min_area",
            "per_image_dice", "params", "macs")
    from train.datasets import portable_path

    shown = [portable_path(v) if Path(v).is_absolute() else v for v in train_args]
    result = {"label": label, "folds": folds, "train_args": shown,  # no build-machine paths
              "per_fold": [{k: m.get(k) for k in keep} for m in fold_metrics],
              "summary": summarize_folds(fold_metrics),
              "all_frames_per_image_dice": _stats([m.get("per_image_dice")
                                                   for m in fold_metrics])}
    fold_outs = [out / FOLD_DIR.format(k) for k in range(folds)]
    heads = heads_sweep(fold_outs)
    if heads:
        result["heads_sweep"] = heads
    if int8 or min_areas or thresholds:  # one forward pass per fold, shared below
        fold_probs = [held_out_probs(f, convert_fold(f) if int8 else None) for f in fold_outs]
    if int8:  # the run's threshold, min area 0: as the float figures
        rows = [_decided(frames, classes, prob, PostprocessConfig(threshold=t, min_area=0))
                for frames, classes, prob, t in fold_probs]
        result["int8_per_fold"] = rows
        result["int8_summary"] = summarize_folds(rows)
        result["int8_drop"] = {
            name: result["summary"][name]["per_image_dice"]["mean"]
            - s["per_image_dice"]["mean"] for name, s in result["int8_summary"].items()
            if s["per_image_dice"]["mean"] is not None}
    if min_areas or thresholds:
        sweep = sweep_decision(fold_probs, min_areas or [0], thresholds)
        result["decision_sweep"] = {"models": "int8" if int8 else "float", "settings": sweep}
        if min_detection is not None:
            name = next(iter(result["summary"]))
            result["chosen_decision"] = choose_setting(sweep, min_detection, name)
    write_json_atomic(results, result)
    return result
