"""The device loop, one loop read top to bottom (in the spirit of jetson-inference's segnet.py):

    open the model, the source and the outputs (all checked before the first result is written)
    while frames come:  capture -> infer -> render -> sinks -> status -> stop check
    print the summary (FPS, per-stage p50/p95/p99); optionally write it as JSON (--report)

``run(RunConfig(...)) -> summary`` is the library entry point; edge.cli maps flags onto it.
Ctrl-C or SIGTERM, a lost live source and a bad frame under ``on_bad_frame="stop"`` end the
loop the way the end of a file does (outputs closed, so the recording plays; summary printed;
report written) and are then raised to the caller, which turns them into the exit code.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from edge import signals
from edge.errors import BadFrame, EdgeError, RoiError, SourceLost, UserInputError
from edge.fsutil import check_writable_file, write_json_atomic
from edge.io import capture as capturing  # "capture" is also a RunConfig field
from edge.io import sinks as sink_module  # gui_problem at call time: one stand-in for both
from edge.io.sinks import MaskDirSink, VideoFileSink, WindowSink
from edge.io.sources import SourceConfig, open_source
from edge.meter import StageMeter, format_summary
from edge.model.classes import ClassTally, class_lines, status_suffix
from edge.model.metadata import ModelMeta
from edge.model.preprocess import check_roi, to_gray8
from edge.model.segmodel import SegModel
from edge.model.settings import Overrides
from edge.model.store import default_model_path
from edge.signals import stop_reason
from edge.stats import NerveArea
from edge.types import Frame, FrameResult
from edge.view.overlay import draw_overlay
from edge.view.tls import ServeOptions

# One interpreter thread by default: predictable latency, and the other cores stay free for
# capture, drawing and encoding. On the shared 2-core x86 test machine 1 and 2 threads were
# within noise for the tiny fixture. Raise it (--threads 4 on a Pi 4/5) for bigger models.
# OpenCV's own worker pool would fight the interpreter's threads for the same cores, and
# frame-sized resizes are too small to gain from it: OpenCV stays single-threaded.
OPENCV_THREADS = 1
DEFAULT_THREADS = 1
DEFAULT_ALPHA = 0.4
DEFAULT_MAX_VIEWERS = 4  # browsers streaming --serve at once
STATUS_EVERY_S = 2.0  # headless progress line period
WINDOW_TITLE = "nerve-edge"
STAGES = ("capture", "preprocess", "inference", "postprocess", "render")
NORM_RTOL = 1e-6  # when comparing metadata normalization with the int8 fast path's
BAD_FRAME_POLICIES = ("skip", "stop")
BAD_FRAMES_LISTED = 10  # the report names the first bad frames (bounded: a --loop repeats them)
# stop_reason values besides clikit.stop_reason's "interrupted (Ctrl-C)" / "terminated (SIGTERM)"
SOURCE_ENDED = "source ended"  # a file or folder reached its end
MAX_FRAMES = "max frames"
STOPPED_BY_OUTPUT = "stopped by output"  # q/Esc in the window


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs. None means "from the model's metadata" or "off".

    model: .tflite/.onnx path; None = the packaged default (nerve_default.* when shipped,
           else the phantom-trained fixture).
    backend: "tflite" | "onnx" | None (= from the model's suffix).
    threads: interpreter threads (see DEFAULT_THREADS).
    providers: ONNX Runtime execution providers (None = CPU).
    source: which frames to read (edge.io.sources.SourceConfig; default: the phantom).
    roi: (x, y, w, h) crop in frame pixels before resizing to the model input (None = the
         source's image region, ``info.roi``, if it has one, else the whole frame).
    threshold, min_area: override the sidecar's values (None = sidecar / defaults).
    smooth: EMA weight of the previous probability map (0 = off; forced off for image folders).
    alpha: overlay fill opacity.
    headless: no window. record: video file of the overlays. save_masks: folder for 0/255 PNGs.
    report: JSON file for the summary. max_frames: stop after this many frames (None = run on).
    serve: "[HOST:]PORT" for the web view; serve_token: its access token; serve_options:
           its HTTPS, pairing and mDNS settings (edge.view.tls.ServeOptions).
    show_fps: draw FPS and per-stage ms on the overlay. quiet: no config block, status or summary.
    on_bad_frame: "skip" (warn, count in the summary, go on) or "stop" (end the run, exit 2).
    allow_sha256_mismatch: run a model whose sidecar sha256 does not match (warned, reported).
    dicom_out: folder for the DICOM SEG + overlay capture (DICOM input only; edge.io.dicom).
    pacs: send those to this PACS ("HOST:PORT:AET" or a DICOMweb URL); kept in an outbox.
    capture: folder for raw frames to label later (edge.io.capture), at most one every
             capture_every seconds, up to capture_max_mb of PNGs in the folder.
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
    serve_max_viewers: int = DEFAULT_MAX_VIEWERS
    serve_options: ServeOptions = field(default_factory=ServeOptions)
    show_fps: bool = True
    quiet: bool = False
    on_bad_frame: str = "skip"
    allow_sha256_mismatch: bool = False
    dicom_out: str | None = None
    pacs: str | None = None
    capture: str | None = None
    capture_every: float = capturing.DEFAULT_EVERY_S
    capture_max_mb: float = capturing.DEFAULT_MAX_MB

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
            (self.on_bad_frame in BAD_FRAME_POLICIES,
             f"--on-bad-frame {self.on_bad_frame}: use one of {', '.join(BAD_FRAME_POLICIES)}"),
            (self.pacs is None or bool(self.dicom_out),
             "--pacs needs --dicom-out DIR: files are written there and kept until the PACS "
             "has them"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserInputError(message)


# ------------------------------------------------------------------------------- the model
def open_model(cfg: RunConfig, path: Path) -> SegModel:
    """The run's model (edge.model.SegModel): the flags are the caller's overrides; the
    source's image region is bound after the source opens (SegModel.with_source_roi)."""
    cv2.setNumThreads(OPENCV_THREADS)
    overrides = Overrides(
        roi=cfg.roi, threshold=cfg.threshold, min_area=cfg.min_area,
        # Frames of an image folder are unrelated: averaging them would blend patients.
        smooth=0.0 if cfg.source.kind == "images" else cfg.smooth)
    return SegModel.open(path, overrides, cfg.backend, cfg.threads, cfg.providers,
                         allow_sha256_mismatch=cfg.allow_sha256_mismatch)


# ------------------------------------------------------------------------------- outputs
def without_window_if_no_gui(cfg: RunConfig) -> RunConfig:
    """A window was asked for (no --headless) but this process cannot open one (headless
    OpenCV, no display): with another output (--serve, --record, --save-masks, --dicom-out)
    the run needs no window, so it runs headless and says so in one line; with none, the
    config is kept and WindowSink refuses it (exit 2, the line names the fix)."""
    others = cfg.serve or cfg.record or cfg.save_masks or cfg.dicom_out
    if cfg.headless or not others:
        return cfg
    problem = sink_module.gui_problem()
    if problem is None:
        return cfg
    if not cfg.quiet:
        _say(f"edge-run: {problem}: running without a window (as with --headless)")
    return replace(cfg, headless=True)


def open_sinks(cfg: RunConfig, stack: contextlib.ExitStack, fps: float | None,
               model: dict[str, str] | None = None, warnings: list[str] | None = None) -> list:
    """Every requested output, opened (and so validated) now; closed by ``stack``.
    ``model``: the model's labels for the web view's /metrics (see model_labels);
    ``warnings``: the model's warnings for its status (Model.warnings)."""
    makers: list[Callable[[], object]] = []
    if not cfg.headless:
        makers.append(lambda: WindowSink(WINDOW_TITLE))
    if cfg.record:
        makers.append(lambda: VideoFileSink(cfg.record, fps))
    if cfg.save_masks:
        makers.append(lambda: MaskDirSink(cfg.save_masks))
    if cfg.serve:
        from edge.view.serve import ServeSink  # only when asked: it starts an HTTP server

        log = None if cfg.quiet else _say
        makers.append(lambda: ServeSink.from_spec(cfg.serve, token=cfg.serve_token,
                                                  max_viewers=cfg.serve_max_viewers,
                                                  alpha=cfg.alpha, log=log, model=model,
                                                  warnings=warnings,
                                                  options=cfg.serve_options))
    sinks = []
    for make in makers:
        sink = make()
        stack.callback(sink.close)
        sinks.append(sink)
    return sinks


def open_dicom_sink(cfg: RunConfig, stack: contextlib.ExitStack, source, model_version: str):
    """--dicom-out [--pacs]: SEG + overlay capture at close; it refers to the source's files."""
    from edge.io.dicom.sink import DicomSink  # only when asked: pydicom, highdicom

    sink = DicomSink.from_run(cfg.dicom_out, cfg.pacs, source, cfg.alpha, model_version,
                              None if cfg.quiet else _say)
    stack.callback(sink.close)
    return sink


def model_labels(model: SegModel) -> dict[str, str]:
    """Which model runs, for a fleet's monitoring (the web view's /metrics model_info)."""
    return {"sha256": model.sha256, "name": str(model.meta.name),
            "version": str(model.meta.version), "backend": str(model.backend.name)}


def _say(text: str) -> None:
    print(text, flush=True)


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def warn(text: str) -> None:
    _stderr(f"edge-run: warning: {text}")


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any frame -> HxWx3 uint8 BGR (what overlays and recordings use)."""
    if image.ndim == 3 and image.shape[2] == 3:
        return image if image.dtype == np.uint8 else (image >> 8).astype(np.uint8)
    return cv2.cvtColor(to_gray8(image), cv2.COLOR_GRAY2BGR)


def stats_lines(meter: StageMeter, post, show_fps: bool,
                area: NerveArea | None = None) -> list[str]:
    area = area or NerveArea()
    # multi-class: one line per structure; nerve-only: the nerve line as before
    found = (class_lines(post.classes, area) if post.class_map is not None
             else [area.text(post.area_px, post.detected)])
    if not show_fps:
        return found
    ms = meter.last_ms
    stages = " ".join(
        f"{name[:4]} {ms[name]:.1f}" for name in ("preprocess", "inference", "postprocess")
        if name in ms
    )
    return [f"{meter.fps:.1f} FPS", f"{stages} ms", *found]


def render(cfg: RunConfig, frame: Frame, post, meter: StageMeter, overlay: bool,
           area: NerveArea) -> FrameResult:
    """What the sinks get: the frame as BGR, the mask, and the overlay when a sink shows it."""
    bgr = to_bgr8(frame.image)
    drawn = None
    if overlay:
        drawn = draw_overlay(bgr, post.mask, cfg.alpha,
                             stats_lines(meter, post, cfg.show_fps, area),
                             post.classes, post.class_map, post.safety_warning)
    return FrameResult(
        frame_index=frame.index, name=frame.name, frame=bgr, mask=post.mask, prob=post.prob,
        overlay=drawn, detected=post.detected, area_px=post.area_px,
        area_mm2=area.mm2(post.area_px), presence=post.presence,
        fps=meter.fps, stage_ms=dict(meter.last_ms), classes=post.classes,
        class_map=post.class_map, safety_warning=post.safety_warning,
    )


class StatusLine:
    """The headless progress line on stderr every STATUS_EVERY_S (edge-bench soak parses it:
    keep the format ``edge-run: frame N, X FPS, inference Y ms, nerve ...``)."""

    def __init__(self, cfg: RunConfig):
        self.on = cfg.headless and not cfg.quiet
        self._due = time.monotonic() + STATUS_EVERY_S

    def update(self, meter: StageMeter, post, area: NerveArea) -> None:
        now = time.monotonic()
        if not self.on or now < self._due:
            return
        self._due = now + STATUS_EVERY_S
        nerve = f"nerve yes ({area.label(post.area_px)})" if post.detected else "nerve no"
        inference = meter.last_ms.get("inference", 0.0)
        _stderr(f"edge-run: frame {meter.frames}, {meter.fps:.1f} FPS, "
                f"inference {inference:.1f} ms, {nerve}{status_suffix(post.classes, area)}")


# ------------------------------------------------------------------------------- frames
@dataclass
class BadFrames:
    """Undecodable frames met so far; ``policy`` says whether they are skipped or stop."""

    policy: str = "skip"
    count: int = 0
    first: list[str] = field(default_factory=list)  # the first BAD_FRAMES_LISTED messages

    def read(self, source) -> Frame | None:
        """source.read(), skipping (warned, counted) undecodable frames unless the policy is
        "stop", where the BadFrame is raised."""
        while True:
            try:
                return source.read()
            except BadFrame as e:
                if self.policy == "stop":
                    raise
                self.count += 1
                if len(self.first) < BAD_FRAMES_LISTED:
                    self.first.append(str(e))
                warn(f"skipped a bad frame: {e}")


def first_frame(source, bad: BadFrames, cfg: RunConfig) -> Frame:
    frame = bad.read(source)
    if frame is None:
        what = " ".join(str(v) for v in (cfg.source.kind, cfg.source.target) if v is not None)
        raise UserInputError(f"source {what} delivered no frame: check that it plays, "
                             f"or pick another source")
    return frame


# ------------------------------------------------------------------------------- the loop
def loop(cfg: RunConfig, model: SegModel, source, sinks: list,
         meter: StageMeter, first: Frame, bad: BadFrames,
         area: NerveArea, tally: ClassTally) -> tuple[str, BaseException | None]:
    """Run until something stops it; returns (stop_reason, exception to raise after the
    summary or None)."""
    overlay = any(s.needs_overlay for s in sinks)
    status = StatusLine(cfg)
    pending: Frame | None = first  # read before the outputs opened: its size checked the ROI
    try:
        while True:
            meter.begin_frame()
            with meter.stage("capture"):
                frame, pending = pending or bad.read(source), None
            if frame is None:
                meter.discard_frame()
                return SOURCE_ENDED, None
            with meter.stage("preprocess"):
                gray, x = model.prepare(frame.image)
            with meter.stage("inference"):
                outputs = model.infer(gray, x)
            with meter.stage("postprocess"):
                post = model.decide(outputs, frame.image.shape[:2])
            with meter.stage("render"):
                if sinks:  # headless with no output: no BGR copy for nobody
                    result = render(cfg, frame, post, meter, overlay, area)
                    for sink in sinks:
                        sink.write(result)
            with signals.held():  # a stop counts this frame in every counter or in none
                meter.end_frame()
                area.add(post.area_px, post.detected)  # px, or mm2 when the source knows
                tally.add(post.classes, post.safety_warning)
            status.update(meter, post, area)
            if cfg.max_frames and meter.frames >= cfg.max_frames:
                return MAX_FRAMES, None
            if any(sink.should_stop() for sink in sinks):
                return STOPPED_BY_OUTPUT, None
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM through edge.clikit
        return stop_reason(e), e
    except SourceLost as e:  # "source camera 0 lost: no frame for 5.0 s ..."
        return str(e), e
    except BadFrame as e:  # only under on_bad_frame="stop"
        return f"bad frame: {e}", e


# ------------------------------------------------------------------------------- the run
def run(cfg: RunConfig) -> dict:
    """Run the pipeline; returns the summary dict (also printed, and written to cfg.report).

    Raises UserInputError subclasses (bad model/sidecar/source/ROI/output) before anything
    is written. After frames flowed, an interruption (KeyboardInterrupt, clikit.Terminated),
    SourceLost or BadFrame (policy "stop") is raised once the outputs are closed and the
    summary and report are out.
    """
    cfg = without_window_if_no_gui(cfg)
    model_path = Path(cfg.model) if cfg.model else default_model_path(cfg.backend)
    if cfg.report:
        check_writable_file(cfg.report, "--report")
    model = open_model(cfg, model_path)
    if model.sha256_check == "mismatch":
        warn(f"{model_path.name}: sha256 does not match its sidecar; running it anyway "
             f"(--allow-sha256-mismatch), recorded in the report")
    for line in model.warnings:  # printed even with --quiet: it changes what the masks mean
        warn(line)
    if not cfg.quiet:
        _say(describe(cfg, model))
    meter = StageMeter(order=STAGES)
    bad = BadFrames(cfg.on_bad_frame)
    with contextlib.ExitStack() as stack:
        # a recorded DICOM cine plays at its own rate when watched (a window, --serve)
        source = open_source(cfg.source, watched=not cfg.headless or bool(cfg.serve))
        stack.callback(source.close)
        source = tap = capturing.tap(source, cfg.capture, cfg.capture_every, cfg.capture_max_mb)
        first = first_frame(source, bad, cfg)
        info = source.info
        model = model.with_source_roi(info.roi)
        if model.settings.roi_from == "source" and not cfg.quiet:
            _say(f"          roi     {','.join(map(str, model.settings.roi))} (the source's "
                 f"image region)")
        check_model_roi(model, first.image.shape[:2])
        sinks = open_sinks(cfg, stack, info.fps or cfg.source.fps,
                           model_labels(model) if cfg.serve else None,
                           warnings=model.warnings)
        if cfg.dicom_out:
            sinks.append(open_dicom_sink(cfg, stack, source, model.meta.version))
        area = NerveArea(info.pixel_area_mm2)
        tally = ClassTally(NerveArea(area.pixel_area_mm2))
        reason, stopped_by = loop(cfg, model, source, sinks, meter, first, bad, area, tally)
    # The outputs are closed here (the recording is playable) before the summary is written.
    summary = {**meter.summary(), "bad_frames": bad.count, "bad_frames_first": bad.first,
               "stop_reason": reason,
               "nerve_area": area.summary(), **tally.summary()}
    if cfg.capture:
        summary["capture"] = tap.writer.summary()
    if not cfg.quiet:
        skipped = f" ({bad.count} bad frame(s) skipped)" if bad.count else ""
        _say(f"edge-run: stopped: {reason}{skipped}\n{format_summary(summary)}")
        if cfg.capture:
            _say(capturing.summary_line(summary["capture"]))
    if cfg.report:
        write_report(cfg.report, report(cfg, model, summary))
    if stopped_by is not None:
        raise stopped_by
    return summary


def describe(cfg: RunConfig, model: SegModel) -> str:
    """The resolved config, one short block."""
    b, st = model.backend, model.settings
    h, w = st.input_hw
    outputs = [name for name, on in (("window", not cfg.headless), ("record " + str(cfg.record),
               cfg.record), ("masks " + str(cfg.save_masks), cfg.save_masks),
               ("serve " + str(cfg.serve), cfg.serve), ("report " + str(cfg.report), cfg.report),
               ("dicom " + str(cfg.dicom_out), cfg.dicom_out), ("pacs", cfg.pacs),
               (f"capture {cfg.capture} every {cfg.capture_every:g} s", cfg.capture))
               if on] or ["none (headless)"]
    src = cfg.source
    pace = (f", fps {src.fps:g}" if src.fps else "") + (", realtime" if src.realtime else "")
    roi = ",".join(map(str, st.roi)) + f" ({st.roi_from})" if st.roi else "none"
    return "\n".join([
        f"edge-run: model   {model.path} ({model.meta.name} {model.meta.version}, "
        f"{h}x{w}x{st.channels} {b.input_dtype.name}, sha256 {model.sha256_check})",
        f"          backend {b.name}, threads {b.threads or 'default'}"
        f"{', int8 fast path' if model.fast else ''}",
        f"          source  {src.kind}{'' if src.target is None else ' ' + str(src.target)}"
        f"{pace}, roi {roi}, max frames {cfg.max_frames or 'unlimited'}",
        f"          post    threshold {st.threshold}, min area {st.min_area} px, "
        f"smooth {st.smooth}, bad frames: {cfg.on_bad_frame}",
        f"          outputs {', '.join(outputs)}",
        f"          classes {describe_classes(model.meta)}",
    ])


def describe_classes(meta: ModelMeta) -> str:
    """"nerve #ffc800, vessel #ff3030 (safety, threshold 0.4)": the sidecar's classes (a
    nerve-only model: its one class), with the values the sidecar gives each."""
    def one(c) -> str:
        notes = [n for n, on in (("safety", c.safety), (f"threshold {c.threshold}",
                 c.threshold is not None), (f"min area {c.min_area}", c.min_area is not None))
                 if on]
        return f"{c.name} {c.color}" + (f" ({', '.join(notes)})" if notes else "")

    return ", ".join(one(c) for c in meta.class_list)


def report(cfg: RunConfig, model: SegModel, summary: dict) -> dict:
    st = model.settings
    return {
        **summary,
        "model_path": str(model.path),
        "model_sha256": model.sha256,
        "sidecar_sha256": model.meta.sha256,
        "sha256_check": model.sha256_check,
        "model_warnings": model.warnings,  # e.g. converted below the Dice floor
        "model_name": model.meta.name,
        "model_version": model.meta.version,
        "backend": model.backend.name,
        "threads": model.backend.threads,
        "source": asdict(cfg.source),
        "config": {
            **{k: v for k, v in asdict(cfg).items()
               if k not in ("source", "serve_token", "pacs")},  # a PACS URL may hold a password
            "roi": list(st.roi) if st.roi else None,  # --roi, the sidecar's or the source's
            "roi_from": st.roi_from,
            "threshold": st.threshold,
            "min_area": st.min_area,
            "smooth": st.smooth,
            "input_hw": list(st.input_hw),
            "int8_fast_path": model.fast,
        },
        "settings": st.to_dict(),  # the resolved settings (edge.model.settings), classes too
    }


def check_model_roi(model: SegModel, frame_hw: tuple[int, int]) -> None:
    """The resolved ROI fits the frames (RoiError naming where it came from and the fix)."""
    st = model.settings
    try:
        check_roi(st.roi, frame_hw)
    except RoiError as e:
        if st.roi_from != "sidecar":
            raise
        raise RoiError(f"{model.path.name}: its sidecar's roi (the crop it was trained on) "
                       f"does not fit the frames: {e}; pass --roi x,y,w,h for these "
                       f"frames") from None


def write_report(path: str, data: dict) -> None:
    """Write the report atomically; if that fails at the end of a run, print it to stderr
    rather than lose it, and raise a runtime error (exit 1)."""
    try:
        write_json_atomic(path, data)
    except OSError as e:
        _stderr(json.dumps(data, indent=2))
        raise EdgeError(f"--report {path}: cannot write it ({e.strerror or e}); the report "
                        f"was printed to stderr above") from e
