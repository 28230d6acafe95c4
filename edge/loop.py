"""The device loop, in the spirit of jetson-inference's segnet.py:

    open model, source, outputs (all validated before the first result is written)
    while frames come:  capture -> preprocess -> inference -> postprocess -> overlay -> sinks
    print the summary (FPS, per-stage p50/p95/p99); optionally write it as JSON

``run(RunConfig(...))`` is the library entry point; edge.cli only maps flags onto RunConfig.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.backends import open_backend
from edge.errors import ModelError, OutputError, SourceStalled, UserInputError
from edge.metadata import ModelMeta, load_meta, sha256_file, write_json_atomic
from edge.meter import StageMeter, format_summary
from edge.overlay import draw_overlay
from edge.postprocess import PostprocessConfig, Postprocessor
from edge.preprocess import (
    DEFAULT_OFFSET,
    DEFAULT_SCALE,
    PreprocessConfig,
    check_roi,
    frame_to_gray_input,
    normalize,
    to_gray8,
)
from edge.sinks import MaskDirSink, VideoFileSink, WindowSink
from edge.sources import SourceConfig, open_source
from edge.types import Frame, FrameResult

# The packaged models, first match wins: the trained model once it ships, else the fixture.
DEFAULT_MODELS = {
    "tflite": ("nerve_default_int8.tflite", "nerve_fixture_int8.tflite"),
    "onnx": ("nerve_default.onnx", "nerve_fixture.onnx"),
}
# One interpreter thread by default: predictable latency, and the other cores stay free for
# capture, drawing and encoding. On the shared 2-core x86 test machine 1 and 2 threads were
# within noise for the tiny fixture. Raise it (--threads 4 on a Pi 4/5) for bigger models.
OPENCV_THREADS = 1  # see Pipeline.__init__
DEFAULT_THREADS = 1
DEFAULT_ALPHA = 0.4
STATUS_EVERY_S = 2.0  # headless progress line period
WINDOW_TITLE = "nerve-edge"
STAGES = ("capture", "preprocess", "inference", "postprocess", "render")
NORM_RTOL = 1e-6  # when comparing metadata normalization with the int8 fast path's


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs. None means "from the model's metadata" or "off".

    model: .tflite/.onnx path; None = the packaged default (nerve_default.* when shipped,
           else the phantom-trained fixture).
    backend: "tflite" | "onnx" | None (= from the model's suffix).
    threads: interpreter threads (see DEFAULT_THREADS).
    providers: ONNX Runtime execution providers (None = CPU).
    source: which frames to read (edge.sources.SourceConfig; default: the phantom).
    roi: (x, y, w, h) crop in frame pixels before resizing to the model input.
    threshold, min_area: override the sidecar's values (None = sidecar / defaults).
    smooth: EMA weight of the previous probability map (0 = off; forced off for image folders).
    alpha: overlay fill opacity.
    headless: no window. record: video file of the overlays. save_masks: folder for 0/255 PNGs.
    report: JSON file for the summary. max_frames: stop after this many frames (None = run on).
    serve: "[HOST:]PORT" for the web view; serve_token: its access token.
    show_fps: draw FPS and per-stage ms on the overlay. quiet: no config block, status or summary.
    """

    model: str | None = None
    backend: str | None = None
    threads: int | None = DEFAULT_THREADS
    providers: tuple[str, ...] | None = None
    source: SourceConfig = field(default_factory=SourceConfig)
    roi: tuple[int, int, int, int] | None = None
    threshold: float | None = None
    min_area: int | None = None
    smooth: float = 0.0
    alpha: float = DEFAULT_ALPHA
    headless: bool = False
    record: str | None = None
    save_masks: str | None = None
    report: str | None = None
    max_frames: int | None = None
    serve: str | None = None
    serve_token: str | None = None
    serve_max_viewers: int = 4
    show_fps: bool = True
    quiet: bool = False

    def __post_init__(self):
        checks = [
            (self.threads is None or self.threads >= 1, f"--threads {self.threads}: use 1 or more"),
            (self.threshold is None or 0.0 < self.threshold < 1.0,
             f"--threshold {self.threshold}: use a probability between 0 and 1, e.g. 0.5"),
            (self.min_area is None or self.min_area >= 0, f"--min-area {self.min_area}: use >= 0"),
            (0.0 <= self.smooth < 1.0,
             f"--smooth {self.smooth}: use a weight in [0, 1), e.g. 0.5 (0 = off)"),
            (0.0 <= self.alpha <= 1.0, f"--alpha {self.alpha}: use an opacity from 0 to 1"),
            (self.max_frames is None or self.max_frames >= 1,
             f"--max-frames {self.max_frames}: use 1 or more"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserInputError(message)


def default_model_path(backend: str | None = None, models_dir=None) -> Path:
    """The packaged model for ``backend`` (tflite unless "onnx"): nerve_default.* if present,
    else the fixture. Dropping nerve_default_int8.tflite / nerve_default.onnx (+ their .json
    sidecars) into edge/models switches the default with no code change. ``models_dir``
    overrides the packaged folder (tests)."""
    models = importlib.resources.files("edge") / "models" if models_dir is None else models_dir
    names = DEFAULT_MODELS["onnx" if backend == "onnx" else "tflite"]
    for name in names:
        candidate = models / name
        if candidate.is_file():
            return Path(str(candidate))
    raise ModelError(
        f"no packaged model ({' or '.join(names)}) in {models}: pass --model PATH, or build the "
        f"fixture with scripts/make_fixture_model.py"
    )


def check_report_path(report: str | None) -> None:
    """Fail before the run, not after it, when the report cannot be written."""
    if report is None:
        return
    path = Path(report)
    if path.is_dir():
        raise OutputError(f"--report {path} is a folder; give a file name like run.json")
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"--report {path}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"--report {path}: folder {folder} is not writable; choose another path")


def _check_meta(path: Path, meta: ModelMeta, backend) -> None:
    if meta.input_hw is not None and tuple(meta.input_hw) != tuple(backend.input_hw):
        raise ModelError(
            f"{path.name}: sidecar input_hw {meta.input_hw} does not match the model input "
            f"{backend.input_hw}: fix or delete {path.with_suffix('.json').name}"
        )


def _use_gray8_fast_path(backend, meta: ModelMeta) -> bool:
    """int8 input with scale 1/255, zero point -128 and pixel/255 normalization: quantizing
    is pixel - 128, done without float math by the backend's run_gray8."""
    return (
        getattr(backend, "is_gray8_exact", False)
        and abs(meta.scale - DEFAULT_SCALE) <= NORM_RTOL * DEFAULT_SCALE
        and meta.offset == DEFAULT_OFFSET
    )


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any frame -> HxWx3 uint8 BGR (what overlays and recordings use)."""
    if image.ndim == 3 and image.shape[2] == 3:
        return image if image.dtype == np.uint8 else (image >> 8).astype(np.uint8)
    return cv2.cvtColor(to_gray8(image), cv2.COLOR_GRAY2BGR)


class Pipeline:
    """Model + pre/post-processing for one run; ``process(frame)`` timed stage by stage."""

    def __init__(self, cfg: RunConfig, model_path: Path, meter: StageMeter):
        self.model_path = model_path
        # OpenCV's own worker pool fights the interpreter's threads for the same cores, and
        # frame-sized resizes are too small to gain from it: keep OpenCV single-threaded.
        cv2.setNumThreads(OPENCV_THREADS)
        self.backend = open_backend(model_path, cfg.backend, cfg.threads, cfg.providers)
        self.meta = load_meta(model_path)
        _check_meta(model_path, self.meta, self.backend)
        self.pre = PreprocessConfig(
            input_hw=tuple(self.backend.input_hw), roi=cfg.roi, scale=self.meta.scale,
            offset=self.meta.offset, channels=self.backend.input_channels,
        )
        self.post_cfg = PostprocessConfig(
            threshold=self.meta.threshold if cfg.threshold is None else cfg.threshold,
            min_area=self.meta.min_area if cfg.min_area is None else cfg.min_area,
            # Frames of an image folder are unrelated: averaging them would blend patients.
            smooth=0.0 if cfg.source.kind == "images" else cfg.smooth,
            presence_threshold=self.meta.presence_threshold,
        )
        self.post = Postprocessor(self.post_cfg)
        self.fast = _use_gray8_fast_path(self.backend, self.meta)
        self.meter = meter

    def infer(self, frame: Frame):
        """preprocess -> inference -> postprocess; returns a PostResult."""
        with self.meter.stage("preprocess"):
            gray = frame_to_gray_input(frame.image, self.pre)
            x = None if self.fast else normalize(gray, self.pre)
        with self.meter.stage("inference"):
            outputs = self.backend.run_gray8(gray) if self.fast else self.backend.run(x)
        with self.meter.stage("postprocess"):
            return self.post(outputs, frame.image.shape[:2], self.pre.roi)


def open_sinks(cfg: RunConfig, stack: contextlib.ExitStack, fps: float | None,
               model: dict[str, str] | None = None) -> list:
    """Every requested output, opened (and so validated) now; closed by ``stack``.
    ``model``: the model's labels for the web view's /metrics (see model_labels)."""
    makers: list[Callable[[], object]] = []
    if not cfg.headless:
        makers.append(lambda: WindowSink(WINDOW_TITLE))
    if cfg.record:
        makers.append(lambda: VideoFileSink(cfg.record, fps))
    if cfg.save_masks:
        makers.append(lambda: MaskDirSink(cfg.save_masks))
    if cfg.serve:
        from edge.serve import ServeSink  # only when asked: it starts an HTTP server

        log = None if cfg.quiet else _say
        makers.append(lambda: ServeSink.from_spec(cfg.serve, token=cfg.serve_token,
                                                  max_viewers=cfg.serve_max_viewers,
                                                  alpha=cfg.alpha, log=log, model=model))
    sinks = []
    for make in makers:
        sink = make()
        stack.callback(sink.close)
        sinks.append(sink)
    return sinks


def model_labels(pipe: Pipeline) -> dict[str, str]:
    """Which model runs, for a fleet's monitoring (the web view's /metrics model_info)."""
    return {"sha256": sha256_file(pipe.model_path), "name": str(pipe.meta.name),
            "version": str(pipe.meta.version), "backend": str(pipe.backend.name)}


def _say(text: str) -> None:
    print(text, flush=True)


def _status(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def stats_lines(meter: StageMeter, post, show_fps: bool) -> list[str]:
    nerve = f"nerve: yes, {post.area_px} px" if post.detected else "nerve: no"
    if not show_fps:
        return [nerve]
    ms = meter.last_ms
    stages = " ".join(
        f"{name[:4]} {ms[name]:.1f}" for name in ("preprocess", "inference", "postprocess")
        if name in ms
    )
    return [f"{meter.fps:.1f} FPS", f"{stages} ms", nerve]


def describe(cfg: RunConfig, pipe: Pipeline) -> str:
    """The resolved config, one short block."""
    b, pc, qc = pipe.backend, pipe.pre, pipe.post_cfg
    h, w = b.input_hw
    outputs = [name for name, on in (("window", not cfg.headless), ("record " + str(cfg.record),
               cfg.record), ("masks " + str(cfg.save_masks), cfg.save_masks),
               ("serve " + str(cfg.serve), cfg.serve), ("report " + str(cfg.report), cfg.report))
               if on] or ["none (headless)"]
    src = cfg.source
    return "\n".join([
        f"edge-run: model   {pipe.model_path} ({pipe.meta.name} {pipe.meta.version}, "
        f"{h}x{w}x{b.input_channels} {b.input_dtype.name})",
        f"          backend {b.name}, threads {b.threads or 'default'}"
        f"{', int8 fast path' if pipe.fast else ''}",
        f"          source  {src.kind}{'' if src.target is None else ' ' + str(src.target)}"
        f", roi {pc.roi or 'none'}, max frames {cfg.max_frames or 'unlimited'}",
        f"          post    threshold {qc.threshold}, min area {qc.min_area} px, "
        f"smooth {qc.smooth}",
        f"          outputs {', '.join(outputs)}",
    ])


def _report(cfg: RunConfig, pipe: Pipeline, summary: dict) -> dict:
    return {
        **summary,
        "model_path": str(pipe.model_path),
        "model_sha256": sha256_file(pipe.model_path),
        "model_name": pipe.meta.name,
        "model_version": pipe.meta.version,
        "backend": pipe.backend.name,
        "threads": pipe.backend.threads,
        "source": asdict(cfg.source),
        "config": {
            **{k: v for k, v in asdict(cfg).items() if k not in ("source", "serve_token")},
            "threshold": pipe.post_cfg.threshold,
            "min_area": pipe.post_cfg.min_area,
            "smooth": pipe.post_cfg.smooth,
            "input_hw": list(pipe.backend.input_hw),
            "int8_fast_path": pipe.fast,
        },
    }


class Runner:
    """One run's state: the pipeline, the sinks and the stop logic."""

    def __init__(self, cfg: RunConfig, pipe: Pipeline, sinks: list, meter: StageMeter):
        self.cfg, self.pipe, self.sinks, self.meter = cfg, pipe, sinks, meter
        self.needs_overlay = any(s.needs_overlay for s in sinks)
        self.status_due = time.monotonic() + STATUS_EVERY_S
        self.last_post = None

    def step(self, frame: Frame) -> bool:
        """Process one frame (capture already timed); False when a sink asks to stop."""
        post = self.pipe.infer(frame)
        self.last_post = post
        with self.meter.stage("render"):
            self._render(frame, post)
        self.meter.end_frame()
        self._maybe_status()
        return not any(s.should_stop() for s in self.sinks)

    def _render(self, frame: Frame, post) -> None:
        if not self.sinks:
            return
        bgr = to_bgr8(frame.image)
        overlay = None
        if self.needs_overlay:
            lines = stats_lines(self.meter, post, self.cfg.show_fps)
            overlay = draw_overlay(bgr, post.mask, self.cfg.alpha, lines)
        result = FrameResult(
            frame_index=frame.index, name=frame.name, frame=bgr, mask=post.mask, prob=post.prob,
            overlay=overlay, detected=post.detected, area_px=post.area_px,
            presence=post.presence, fps=self.meter.fps, stage_ms=dict(self.meter.last_ms),
        )
        for sink in self.sinks:
            sink.write(result)

    def _maybe_status(self) -> None:
        if self.cfg.quiet or not self.cfg.headless:
            return
        now = time.monotonic()
        if now < self.status_due:
            return
        self.status_due = now + STATUS_EVERY_S
        post = self.last_post
        nerve = f"nerve yes ({post.area_px} px)" if post.detected else "nerve no"
        inference = self.meter.last_ms.get("inference", 0.0)
        _status(f"edge-run: frame {self.meter.frames}, {self.meter.fps:.1f} FPS, "
                f"inference {inference:.1f} ms, {nerve}")

    def loop(self, source, first: Frame) -> str:
        """Run until the source ends, max_frames, a sink stops it or Ctrl-C; returns why."""
        frame = first
        while True:
            if not self.step(frame):
                return "stopped by output"
            if self.cfg.max_frames and self.meter.frames >= self.cfg.max_frames:
                return "max frames"
            self.meter.begin_frame()
            with self.meter.stage("capture"):
                frame = source.read()
            if frame is None:
                self.meter.discard_frame()
                return "source ended"


def run(cfg: RunConfig) -> dict:
    """Run the pipeline; returns the summary dict (also printed, and written to cfg.report).

    Raises UserInputError subclasses (bad model/source/ROI/output) before anything is written.
    """
    model_path = Path(cfg.model) if cfg.model else default_model_path(cfg.backend)
    check_report_path(cfg.report)
    meter = StageMeter(order=STAGES)
    pipe = Pipeline(cfg, model_path, meter)
    if not cfg.quiet:
        _say(describe(cfg, pipe))
    with contextlib.ExitStack() as stack:
        source = open_source(cfg.source)
        stack.callback(source.close)
        first = source.read()
        if first is None:
            what = " ".join(str(v) for v in (cfg.source.kind, cfg.source.target) if v is not None)
            raise UserInputError(f"source {what} delivered no frame: check that it plays, "
                                 f"or pick another source")
        check_roi(cfg.roi, first.image.shape[:2])
        fps = getattr(source, "fps", None) or cfg.source.fps
        sinks = open_sinks(cfg, stack, fps, model_labels(pipe) if cfg.serve else None)
        runner = Runner(cfg, pipe, sinks, meter)
        meter.begin_frame()
        try:
            reason = runner.loop(source, first)
        except KeyboardInterrupt:
            reason = "interrupted"
        except SourceStalled as e:
            reason = f"source stalled ({e})"
    # The sinks are closed here (the recording is playable) before the summary is written.
    summary = {**meter.summary(), "stop_reason": reason}
    if not cfg.quiet:
        _say(f"edge-run: stopped: {reason}\n{format_summary(summary)}")
    if cfg.report:
        write_json_atomic(cfg.report, _report(cfg, pipe, summary))
    return summary
