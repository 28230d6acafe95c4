"""The device loop, one loop read top to bottom (in the spirit of jetson-inference's segnet.py):

    open the model, the source and the outputs (all checked before the first result is written)
    while frames come:  capture -> infer -> render -> sinks -> status -> stop check
    print the summary (FPS, per-stage p50/p95/p99); optionally write it as JSON (--report)

``run(RunConfig(...)) -> summary`` is the library entry point; edge.cli maps flags onto it.
Ctrl-C or SIGTERM, a lost live source and a bad frame under ``on_bad_frame="stop"`` end the
loop the way the end of a file does (outputs closed, so the recording plays; summary printed;
report written) and are then raised to the caller, which turns them into the exit code.

Beside it: edge.runconfig (RunConfig), edge.outputs (the sinks, opened before the first
frame), edge.view.render (each frame's result and the status line), edge.runreport (the
config block and the --report JSON). Every line goes through edge.log.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from edge import log, signals
from edge.errors import BadFrame, RoiError, SourceLost, UserInputError
from edge.fsutil import check_writable_file
from edge.io import capture as capturing
from edge.io.sources import open_source
from edge.meter import StageMeter, format_summary
from edge.model.classes import ClassTally
from edge.model.preprocess import check_roi
from edge.model.segmodel import SegModel
from edge.model.settings import Overrides
from edge.model.store import default_model_path
from edge.outputs import model_labels, open_dicom_sink, open_sinks, without_window_if_no_gui
from edge.runconfig import RunConfig
from edge.runreport import describe, report, write_report
from edge.signals import stop_reason
from edge.stats import NerveArea
from edge.types import Frame
from edge.view.render import StatusLine, render

# OpenCV's own worker pool would fight the interpreter's threads (edge.runconfig
# DEFAULT_THREADS) for the same cores, and frame-sized resizes are too small to gain from it:
# OpenCV stays single-threaded.
OPENCV_THREADS = 1
STAGES = ("capture", "preprocess", "inference", "postprocess", "render")
BAD_FRAMES_LISTED = 10  # the report names the first bad frames (bounded: a --loop repeats them)
# stop_reason values besides clikit.stop_reason's "interrupted (Ctrl-C)" / "terminated (SIGTERM)"
SOURCE_ENDED = "source ended"  # a file or folder reached its end
MAX_FRAMES = "max frames"
STOPPED_BY_OUTPUT = "stopped by output"  # q/Esc in the window


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
                log.warn(f"skipped a bad frame: {e}")


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
    status = StatusLine(cfg.headless and not cfg.quiet)
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
                    result = render(frame, post, meter, area, overlay, cfg.alpha, cfg.show_fps)
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
    model = start(cfg)
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
            log.say(f"          roi     {','.join(map(str, model.settings.roi))} (the source's "
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
        say_summary(summary, reason, bad.count)
    if cfg.report:
        write_report(cfg.report, report(cfg, model, summary))
    if stopped_by is not None:
        raise stopped_by
    return summary


def start(cfg: RunConfig) -> SegModel:
    """The checks and lines before the source opens: the report is writable, the model
    opens (its warnings printed even with --quiet: they change what the masks mean), and
    the resolved config block."""
    model_path = Path(cfg.model) if cfg.model else default_model_path(cfg.backend)
    if cfg.report:
        check_writable_file(cfg.report, "--report")
    model = open_model(cfg, model_path)
    if model.sha256_check == "mismatch":
        log.warn(f"{model_path.name}: sha256 does not match its sidecar; running it anyway "
                 f"(--allow-sha256-mismatch), recorded in the report")
    for line in model.warnings:
        log.warn(line)
    if not cfg.quiet:
        log.say(describe(cfg, model))
    return model


def say_summary(summary: dict, reason: str, bad_frames: int) -> None:
    skipped = f" ({bad_frames} bad frame(s) skipped)" if bad_frames else ""
    log.say(f"edge-run: stopped: {reason}{skipped}\n{format_summary(summary)}")
    if "capture" in summary:
        log.say(capturing.summary_line(summary["capture"]))


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
