"""Side by side: latency (+ ceiling fraction, + accuracy, + end-to-end pipeline) per model.

One row ("variant") per model file given, in the order given. A variant whose measurement
fails stays in the table with its error: a model that silently disappears from a comparison
is worse than one that visibly failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.accuracy import AccuracyConfig, run_accuracy
from benchmarks.ceiling import CeilingConfig, attach_fractions, run_ceiling
from benchmarks.latency import (
    DEFAULT_REPEATS,
    DEFAULT_RUNS,
    DEFAULT_THREADS,
    DEFAULT_WARMUP,
    LatencyConfig,
    Progress,
    run_latency,
    stderr_progress,
)
from benchmarks.machine import describe_machine
from benchmarks.pipeline import PipelineConfig, check_source, run_pipeline
from benchmarks.report import compare_markdown, plot_latency_vs_dice, write_json, write_text_atomic

ACCURACY_KEYS = ("per_image_dice", "pooled_dice", "iou", "precision", "recall",
                 "detection_rate", "n_images", "classes")
STATIC_KEYS = ("model", "path", "format", "dtype", "macs", "size_bytes", "sha256")


@dataclass(frozen=True)
class CompareConfig:
    """threads..repeats: as for latency. ceiling: measure the ceiling and report each model's
    fraction of it. accuracy / pipeline: None = not measured."""

    threads: tuple[int, ...] = DEFAULT_THREADS
    warmup: int = DEFAULT_WARMUP
    runs: int = DEFAULT_RUNS
    repeats: int = DEFAULT_REPEATS
    subprocess: bool = True
    ceiling: bool = True
    accuracy: AccuracyConfig | None = None
    pipeline: PipelineConfig | None = None


def variant_names(models: Sequence[str | Path]) -> list[str]:
    """Short unique labels: the file stem; the file name where stems collide
    (model.keras / model.onnx); parent/name where names collide (a/model.keras, b/...)."""
    paths = [Path(m) for m in models]
    names = [p.stem for p in paths]
    for label in (lambda p: p.name, lambda p: f"{p.parent.name}/{p.name}", str):
        names = [label(p) if names.count(n) > 1 else n
                 for p, n in zip(paths, names, strict=True)]
    return [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]


def _latency_part(v: dict, rows: list[dict], threads: Sequence[int]) -> list[str]:
    errors = []
    v["p50_ms"], v["p99_ms"] = {}, {}
    for row in rows:
        for k in STATIC_KEYS:
            v.setdefault(k, row.get(k))
        t = str(row["threads"])
        if row["status"] != "ok":
            errors.append(f"latency ({t} thr): {row['error']}")
            continue
        v["p50_ms"][t], v["p99_ms"][t] = row["p50_ms"], row["p99_ms"]
        if row["threads"] == threads[0]:
            v.update(fps=row.get("fps"), gmacs_per_s=row.get("gmacs_per_s"),
                     fraction_of_ceiling=row.get("fraction_of_ceiling"),
                     fraction_of_wide_ceiling=row.get("fraction_of_wide_ceiling"),
                     peak_rss_mb=row.get("peak_rss_mb"), init_ms=row.get("init_ms"))
    return errors


def _accuracy_part(v: dict, row: dict | None) -> list[str]:
    if row is None:
        return []
    if row["status"] != "ok":
        return [f"accuracy: {row['error']}"]
    v.update({k: row.get(k) for k in ACCURACY_KEYS})
    return []


def _pipeline_part(v: dict, row: dict | None) -> list[str]:
    if row is None or row["status"] == "skipped":
        return []
    if row["status"] != "ok":
        return [f"pipeline: {row['error']}"]
    v.update(pipeline_fps=row.get("fps"), non_model_share=row.get("non_model_share"))
    return []


def merge_variants(models, latency, accuracy, pipeline, threads) -> list[dict]:
    """One dict per model with the figures of every part, plus status/error."""
    out = []
    for i, (m, name) in enumerate(zip(models, variant_names(models), strict=True)):
        v: dict = {"variant": name}
        rows = [r for r in latency["results"] if r.get("_index") == i]
        errors = _latency_part(v, rows, threads)
        errors += _accuracy_part(v, accuracy["results"][i] if accuracy else None)
        errors += _pipeline_part(v, pipeline["results"][i] if pipeline else None)
        v.setdefault("path", str(m))
        v["status"] = "failed" if errors else "ok"
        if errors:
            v["error"] = "; ".join(errors)
        out.append(v)
    return out


def _latency_all(models, cfg: CompareConfig, progress: Progress) -> dict:
    lat_cfg = LatencyConfig(threads=cfg.threads, warmup=cfg.warmup, runs=cfg.runs,
                            repeats=cfg.repeats, subprocess=cfg.subprocess)
    doc = {"results": []}
    for i, m in enumerate(models):  # tag rows with their model's position
        part = run_latency([m], lat_cfg, progress)
        doc.update({k: v for k, v in part.items() if k != "results"})
        doc["results"] += [{**r, "_index": i} for r in part["results"]]
    return doc


def run_compare(models: Sequence[str | Path], cfg: CompareConfig = CompareConfig(),
                progress: Progress = stderr_progress) -> dict:
    models = [str(m) for m in models]
    if cfg.pipeline:
        check_source(cfg.pipeline)  # fail fast on a bad --source
    ceiling = (run_ceiling(CeilingConfig(threads=cfg.threads), progress)
               if cfg.ceiling else None)
    latency = _latency_all(models, cfg, progress)
    if ceiling:
        attach_fractions(latency["results"], ceiling)
    accuracy = run_accuracy(models, cfg.accuracy, progress) if cfg.accuracy else None
    pipeline = run_pipeline(models, cfg.pipeline, progress) if cfg.pipeline else None
    return {
        "kind": "compare", "machine": describe_machine(), "config": asdict(cfg),
        "variants": merge_variants(models, latency, accuracy, pipeline, cfg.threads),
        "dataset": accuracy["dataset"] if accuracy else None,
        "ceiling": ceiling, "latency": latency, "accuracy": accuracy, "pipeline": pipeline,
    }


def write_compare(doc: dict, out_json: str | Path) -> dict[str, Path]:
    """results.json, results.md and results.png side by side."""
    out_json = Path(out_json)
    paths = {"json": write_json(out_json, doc),
             "markdown": write_text_atomic(out_json.with_suffix(".md"), compare_markdown(doc)),
             "plot": plot_latency_vs_dice(doc, out_json.with_suffix(".png"))}
    return paths
