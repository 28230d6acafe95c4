"""Markdown tables of `edge-train cv` results files (per fold and mean +- std, per class), as
in MODEL_CARD.md.

    python scripts/cv_table.py benchmarks/results/usgra_cv_nerve_vessel.json \\
        benchmarks/results/usgra_cv_nerve_only.json
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


def main(paths: list[str]) -> None:
    docs = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    print("| model | fold | class | per-image Dice | pooled Dice | TP/FN/FP/TN frames | "
          "detection | false positives |")
    print("|---|---|---|---:|---:|---|---:|---:|")
    for doc in docs:
        print("\n".join(fold_rows(doc)))
    if any(_sweep(d) for d in docs):
        print("\n| model | setting (min area in px) | class | per-image Dice | TP/FN/FP/TN | "
              "detection | "
              "false positives |")
        print("|---|---:|---|---:|---|---:|---:|")
        for doc in docs:
            print("\n".join(sweep_rows(doc)))


if __name__ == "__main__":
    main(sys.argv[1:])
