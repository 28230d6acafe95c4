"""Markdown tables of `edge-train cv` results files (per fold and mean +- std, per class), as
in MODEL_CARD.md.

    python scripts/cv_table.py benchmarks/results/usgra_cv_nerve_vessel.json \\
        benchmarks/results/usgra_cv_nerve_only.json
    python scripts/cv_table.py --compare benchmarks/results/cv_kaggle/*.json

--compare: one row per candidate (the model comparison table): MACs, parameters, the
per-image Dice over nerve frames (mean +- std over folds, and each fold), over every frame
(an empty frame scores 1 when left empty), the int8 figures when the run had --int8, the
detection and false-positive rates, and U-Net++ head cuts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _f(v, spec=".3f") -> str:
    return "-" if v is None else format(v, spec)


def fold_rows(doc: dict) -> list[str]:
    rows = []
    for k, fold in enumerate(doc["per_fold"]):
        for name, m in fold["classes"].items():
            rows.append(f"| {doc['label']} | {k} | {name} | {_f(m['per_image_dice'])} | "
                        f"{_f(m['pooled_dice'])} | {m['tp']}/{m['fn']}/{m['fp']}/{m['tn']} | "
                        f"{_f(m['detection_rate'])} | {_f(m['false_positive_rate'])} |")
    for name, s in doc["summary"].items():
        d, p = s["per_image_dice"], s["pooled_dice"]
        c = s["counts"]
        rows.append(f"| {doc['label']} | **mean +- std** | {name} | **{_f(d['mean'])} +- "
                    f"{_f(d['std'])}** | {_f(p['mean'])} +- {_f(p['std'])} | "
                    f"{c['tp']}/{c['fn']}/{c['fp']}/{c['tn']} (all folds) | "
                    f"{_f(s['all_folds_detection_rate'])} | "
                    f"{_f(s['all_folds_false_positive_rate'])} |")
    return rows


def _sweep(doc: dict) -> dict:
    """setting -> summary: the decision sweep (threshold + min area), or the older files'
    min-area-only sweep."""
    if "decision_sweep" in doc:
        return doc["decision_sweep"]["settings"]
    return {f"min_area={a}": s for a, s in doc.get("min_area_sweep", {}).items()}


def sweep_rows(doc: dict) -> list[str]:
    rows = []
    for area, summary in _sweep(doc).items():
        for name, s in summary.items():
            c = s["counts"]
            rows.append(f"| {doc['label']} | {area} | {name} | "
                        f"{_f(s['per_image_dice']['mean'])} | "
                        f"{c['tp']}/{c['fn']}/{c['fp']}/{c['tn']} | "
                        f"{_f(s['all_folds_detection_rate'])} | "
                        f"{_f(s['all_folds_false_positive_rate'])} |")
    return rows


def _pm(stats: dict | None) -> str:
    if not stats or stats.get("mean") is None:
        return "-"
    return f"{stats['mean']:.3f} +- {stats['std']:.3f}"


def compare_rows(doc: dict) -> list[str]:
    name = next(iter(doc["summary"]))
    s = doc["summary"][name]
    fold0 = doc["per_fold"][0]
    folds = ", ".join(_f(f["classes"][name]["per_image_dice"]) for f in doc["per_fold"])
    int8 = doc.get("int8_summary", {}).get(name, {}).get("per_image_dice")
    drop = doc.get("int8_drop", {}).get(name)
    gmac = fold0.get("macs")
    rows = [f"| {doc['label']} | {_f(gmac and gmac / 1e9)} | {fold0.get('params') or '-'} | "
            f"**{_pm(s['per_image_dice'])}** | {folds} | "
            f"{_pm(doc.get('all_frames_per_image_dice'))} | {_pm(int8)} | "
            f"{_f(drop, '+.4f')} | {_f(s['all_folds_detection_rate'])} | "
            f"{_f(s['all_folds_false_positive_rate'])} |"]
    for k, h in doc.get("heads_sweep", {}).items():
        hs = h[name]
        rows.append(f"| {doc['label']}, heads 1..{k} | {_f(h['gmac'])} | - | "
                    f"{_pm(hs['per_image_dice'])} | - | - | - | - | "
                    f"{_f(hs['all_folds_detection_rate'])} | "
                    f"{_f(hs['all_folds_false_positive_rate'])} |")
    return rows


COMPARE_HEAD = ("| candidate | GMAC | params | per-image Dice, nerve frames (float) | per fold "
                "| per-image Dice, all frames | int8 Dice, nerve frames | int8 drop | detection "
                "| false positives (empty frames) |\n"
                "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
FOLDS_HEAD = ("| model | fold | class | per-image Dice | pooled Dice | TP/FN/FP/TN frames | "
              "detection | false positives |\n|---|---|---|---:|---:|---|---:|---:|")
SWEEP_HEAD = ("\n| model | setting (min area in px) | class | per-image Dice | TP/FN/FP/TN | "
              "detection | false positives |\n|---|---:|---|---:|---|---:|---:|")


def _table(head: str, docs: list[dict], rows) -> None:
    print(head)
    for doc in docs:
        print("\n".join(rows(doc)))


def main(paths: list[str]) -> None:
    compare = paths[:1] == ["--compare"]
    docs = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths[compare:]]
    if compare:
        _table(COMPARE_HEAD, docs, compare_rows)
        return
    _table(FOLDS_HEAD, docs, fold_rows)
    if any(_sweep(d) for d in docs):
        _table(SWEEP_HEAD, docs, sweep_rows)


if __name__ == "__main__":
    main(sys.argv[1:])
