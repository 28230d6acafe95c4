"""End-to-end speed of the edge loop, headless: how much of each frame is not the model.

Runs edge.loop.run (the very loop edge-run uses: capture -> preprocess -> inference ->
postprocess [-> overlay] -> sink) with no window and no output, on the phantom, a video file
or an image folder, and reports its summary: frames, FPS, per-stage p50/p95/p99 ms and the
non-model share of the frame time (1 - inference / total).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from benchmarks.latency import Progress, stderr_progress
from benchmarks.machine import describe_machine
from edge.errors import SourceError
from edge.fsutil import model_format
from edge.model.metadata import sha256_file

DEFAULT_SOURCE = "phantom"
DEFAULT_MAX_FRAMES = 300
DEVICE_FORMATS = ("tflite", "onnx")  # what edge-run can run
FILE_KINDS = ("video", "images")  # sources that end; looped for the benchmark


@dataclass(frozen=True)
class PipelineConfig:
    """source: "phantom", a video file or an image folder (anything edge-run --source takes).
    max_frames: stop after this many frames. threads: interpreter threads."""

    source: str = DEFAULT_SOURCE
    max_frames: int = DEFAULT_MAX_FRAMES
    threads: int = 1
    backend: str | None = None


def run_config(model: str | Path, cfg: PipelineConfig):
    """The edge.runconfig.RunConfig for one headless, output-free, quiet run. Files and folders
    loop, so every model sees max_frames frames however short the clip."""
    from edge.io.sources import is_stream_url, source_from_uri
    from edge.runconfig import RunConfig

    source = source_from_uri(cfg.source)
    if source.kind in FILE_KINDS and not is_stream_url(source.target):
        source = replace(source, loop=True)
    return RunConfig(model=str(model), backend=cfg.backend, threads=cfg.threads, source=source,
                     headless=True, max_frames=cfg.max_frames, quiet=True)


def check_source(cfg: PipelineConfig) -> None:
    """Open and close the source once: a bad --source is a user error (SourceError), found
    before minutes of other measurements rather than after."""
    from edge.io.sources import open_source, source_from_uri

    open_source(source_from_uri(cfg.source)).close()


def pipeline_model(model: str | Path, cfg: PipelineConfig) -> dict:
    from edge.loop import run

    summary = run(run_config(model, cfg))
    return {"model": Path(model).name, "path": str(model), "sha256": sha256_file(model),
            "threads": cfg.threads, "source": cfg.source, "status": "ok", **summary}


def _guarded(model, cfg: PipelineConfig, progress: Progress) -> dict:
    if cfg.backend or model_format(model) in DEVICE_FORMATS:
        return _run_guarded(model, cfg, progress)
    # Keras models are for training, not the device: nothing to measure, nothing failed.
    progress(f"pipeline: {Path(model).name} skipped (edge-run runs .tflite/.onnx only)")
    return {"model": Path(model).name, "path": str(model), "status": "skipped",
            "reason": "edge-run runs .tflite and .onnx models only"}


def _run_guarded(model, cfg: PipelineConfig, progress: Progress) -> dict:
    progress(f"pipeline: {Path(model).name} on {cfg.source}, up to {cfg.max_frames} frames, "
             f"{cfg.threads} thread(s) ...")
    try:
        row = pipeline_model(model, cfg)
    except SourceError:
        raise  # the source is wrong for every model: a user error, not a failed variant
    except Exception as exc:  # a failed variant is reported, never dropped
        progress(f"pipeline: {Path(model).name} FAILED: {exc}")
        return {"model": Path(model).name, "path": str(model), "status": "failed",
                "error": f"{type(exc).__name__}: {exc}"}
    share = row.get("non_model_share")
    progress(f"pipeline: {row['model']} {row['frames']} frames, {row['fps']:.1f} FPS, "
             f"non-model share {share:.0%}" if share is not None else
             f"pipeline: {row['model']} {row['frames']} frames, {row['fps']:.1f} FPS")
    return row


def run_pipeline(models: Sequence[str | Path], cfg: PipelineConfig = PipelineConfig(),
                 progress: Progress = stderr_progress) -> dict:
    check_source(cfg)
    rows = [_guarded(m, cfg, progress) for m in models]
    return {"kind": "pipeline", "machine": describe_machine(), "config": asdict(cfg),
            "results": rows}
