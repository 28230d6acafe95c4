"""The conversion report: conversion_report.json (everything, machine-readable) and
conversion_report.md (the table a person reads), plus a quick latency figure per variant.

The latency is a sanity figure (median of a few runs, one thread, through edge's backends on
the converting machine); edge-bench is the place for honest device numbers.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from convert.targets import report_markdown
from edge.fsutil import atomic_write_text, write_json_atomic

REPORT_JSON = "conversion_report.json"
REPORT_MD = "conversion_report.md"
LATENCY_RUNS = 50  # timed runs per variant
LATENCY_WARMUP = 5  # untimed runs first (allocations, XNNPACK packing)
LATENCY_THREADS = 1  # the Pi-class budget: one core


def quick_latency_ms(model_path: str | Path, x: np.ndarray, runs: int = LATENCY_RUNS,
                     threads: int = LATENCY_THREADS) -> dict:
    """Median / min milliseconds of backend.run on one (1,H,W,C) frame."""
    from edge.model.backends import open_backend

    backend = open_backend(model_path, threads=threads)
    for _ in range(LATENCY_WARMUP):
        backend.run(x)
    times = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        backend.run(x)
        times.append((time.perf_counter() - t0) * 1000.0)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "runs": len(times),
            "threads": threads, "backend": backend.name}


def _fmt(v, spec: str = ".4f") -> str:
    return "-" if v is None else format(v, spec)


def variants_markdown(rows: list[dict]) -> str:
    head = ("| variant | file | size KB | gzip KB | sparsity | Dice/img | pooled Dice | "
            "drop vs float | drift | FP rate (empty frames) | latency ms (1 thr) |")
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r.get('file') or '-'} | "
            f"{_fmt(r.get('bytes') and r['bytes'] / 1024, '.1f')} | "
            f"{_fmt(r.get('gzip_bytes') and r['gzip_bytes'] / 1024, '.1f')} | "
            f"{_fmt(r.get('sparsity'), '.3f')} | {_fmt(r['per_image_dice'])} | "
            f"{_fmt(r['pooled_dice'])} | {_fmt(r['dice_drop'])} | {_fmt(r['drift_mean'])} | "
            f"{_fp_cell(r)} | {_fmt(r.get('latency_ms'), '.2f')} |"
        )
    return "\n".join(lines)


def _fp_cell(row: dict) -> str:
    """'0.9500 (38/40)': the false-positive rate on the empty frames, and how many."""
    rate, n = row.get("false_positive_rate"), row.get("n_empty_truth")
    return "-" if rate is None else f"{rate:.4f} ({round(rate * n)}/{n})"


def _fp_gate(gate: dict) -> str:
    rate = gate.get("max_fp_rate")
    return "" if rate is None else f", int8 FP rate on empty frames <= {rate:g}"


def _source_name(source: dict) -> str:
    return f"{source['run']}/{source['file']}" if source.get("run") else source["file"]


def to_markdown(report: dict) -> str:
    gate = report["gate"]
    verdict = "PASSED" if gate["passed"] else "FAILED: " + "; ".join(gate["failures"])
    parts = [
        f"# Conversion report: {report['name']}",
        "",
        f"Source: `{_source_name(report['source'])}` (sha256 "
        f"{report['source']['sha256'][:12]}), created {report['created_utc']}.",
        f"Command: `{report.get('command', '')}`",
        "",
        f"Validation: {report['data']['n_val_frames']} frames of "
        f"{len(report['data']['val_subjects'])} held-out subjects, through edge's backends and "
        f"post-processing (threshold {report['postprocess']['threshold']}, min area "
        f"{report['postprocess']['min_area']} px). Drop = per-image Dice of the source float "
        "Keras model minus the variant's; drift = mean |p - p_keras| against the Keras model "
        "the file was converted from; FP rate = share of the frames without a nerve on which "
        "the variant outlines one.",
        "",
        variants_markdown(report.get("references", []) + report["variants"]),
        "",
        f"Gate (int8 drop <= {gate['max_dice_drop']}, int8 per-image Dice >= "
        f"{gate.get('min_dice', 0)}{_fp_gate(gate)}, drift <= {gate['max_drift']}): "
        f"**{verdict}**",
        *[f"\n**Warning: written below the Dice floor (--allow-low-dice):** {w}"
          for w in gate.get("warnings", [])],
        "",
        "Sparsity shrinks the gzip size only; it does not make TFLite/XNNPACK convolutions "
        "faster.",
        "",
        "## What runs where",
        "",
        report_markdown(report["targets"]) if report["targets"] else "(no TFLite variants)",
    ]
    if report.get("prune"):
        parts += ["", "## Pruning", "", "```", report["prune"]["table"], "```"]
    return "\n".join(parts) + "\n"


def write_report(folder: str | Path, report: dict) -> tuple[Path, Path]:
    folder = Path(folder)
    json_path, md_path = folder / REPORT_JSON, folder / REPORT_MD
    write_json_atomic(json_path, report)
    atomic_write_text(md_path, to_markdown(report))
    return json_path, md_path
