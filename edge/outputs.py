"""edge-run's outputs, opened (and so checked) before the first frame is written: a window,
a recording, mask PNGs, the web view (--serve) and the DICOM files (--dicom-out [--pacs]).
Each sink is closed by the run's ExitStack, so a recording plays however the run ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace

from edge import log
from edge.io import sinks as sink_module  # gui_problem at call time: one stand-in for both
from edge.io.sinks import MaskDirSink, VideoFileSink, WindowSink
from edge.model.segmodel import SegModel
from edge.runconfig import RunConfig

WINDOW_TITLE = "nerve-edge"


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
        log.say(f"edge-run: {problem}: running without a window (as with --headless)")
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

        makers.append(lambda: ServeSink.from_spec(cfg.serve, token=cfg.serve_token,
                                                  max_viewers=cfg.serve_max_viewers,
                                                  alpha=cfg.alpha, log=_log(cfg), model=model,
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
                              _log(cfg))
    stack.callback(sink.close)
    return sink


def model_labels(model: SegModel) -> dict[str, str]:
    """Which model runs, for a fleet's monitoring (the web view's /metrics model_info)."""
    return {"sha256": model.sha256, "name": str(model.meta.name),
            "version": str(model.meta.version), "backend": str(model.backend.name)}


def _log(cfg: RunConfig) -> Callable[[str], None] | None:
    """Where a sink's progress lines go: stdout (edge.log.say), or nowhere with --quiet."""
    return None if cfg.quiet else log.say
