"""edge-bench soak: run edge-run for minutes and watch its memory and speed.

A clinic board runs for weeks; a leak of a few bytes per frame fills a Pi's memory within
days. This runs ``edge-run ... --headless --serve 127.0.0.1:0`` (or any command) as a child
process, samples its resident memory (RSS) every SAMPLE_S seconds from /proc/PID/status
(psutil elsewhere), reads the frame counter and FPS from edge-run's periodic stderr line
``edge-run: frame N, X FPS, ...``, stops it with SIGINT (a normal stop: summary + report) and
reports:

  * rss slope_mb_per_h: least-squares slope of RSS over time AFTER the warm-up (allocator
    arenas, caches and the meter's exact-sample buffers fill during the first minutes), and
    the same in bytes_per_frame (a leak grows per frame: MB/h scales with the FPS);
  * RSS at start, after the warm-up, at the end, and its maximum;
  * frames and FPS per block (BLOCK_S seconds), from the frame counter (exact) and the
    reported rolling FPS (mean of the lines in the block);
  * the machine (benchmarks.machine) and edge-run's own summary (its --report).

The child runs the whole default path, not just the model: every frame's nerve area and
class tally (a multi-class model with --model, e.g. nerve_vessel_int8.tflite), the result
handed to the web view (--serve on loopback; the soak finds its URL on the child's stdout
and asks for /status.json, /metrics and /frame.jpg at every RSS sample, as a watching
browser would: the status JSON and an overlay are computed), and the area in mm2 when the
source knows its pixel size (--dicom with an ultrasound region). ``coverage`` in the result
says which of these ran. A DICOM cine with a frame time plays at its own rate while
the web view is on (as edge-run does when watched).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.soak_child import MB, Watch, watch_child
from edge.errors import UserInputError
from edge.log import note

SAMPLE_S = 2.0  # RSS sampling period
BLOCK_S = 60.0  # FPS is reported per block of this length
WARMUP_MAX_S = 120.0  # the warm-up is this long at most ...
WARMUP_SHARE = 0.25  # ... and at most this share of the run
S_PER_H = 3600.0
TARGET_SLOPE_MB_PER_H = 1.0  # issue 11: flat means below this after the warm-up
SERVE_SPEC = "127.0.0.1:0"  # the child's web view: loopback, any free port


@dataclass(frozen=True)
class SoakConfig:
    """One soak run.

    minutes: how long the child runs before it is stopped with SIGINT.
    command: the child's argv (build_edge_run_command for edge-run).
    sample_s, block_s: RSS sampling period and FPS block length (s).
    warmup_s: samples before this are left out of the slope; None = min(WARMUP_MAX_S,
              WARMUP_SHARE of the run).
    report: edge-run's --report path inside the command, read back at the end (or None).
    """

    minutes: float
    command: tuple[str, ...]
    sample_s: float = SAMPLE_S
    block_s: float = BLOCK_S
    warmup_s: float | None = None
    report: str | None = None

    def __post_init__(self):
        if not self.minutes > 0:
            raise UserInputError(f"--minutes {self.minutes}: use a positive number, e.g. 20")
        if not self.command:
            raise UserInputError("soak: empty child command")
        if not self.sample_s > 0 or not self.block_s > 0:
            raise UserInputError("--sample-s and --block-s must be positive (seconds)")
        if self.warmup_s is not None and self.warmup_s < 0:
            raise UserInputError(f"--warmup-s {self.warmup_s}: use 0 or more seconds")

    @property
    def duration_s(self) -> float:
        return self.minutes * 60.0

    @property
    def effective_warmup_s(self) -> float:
        if self.warmup_s is not None:
            return self.warmup_s
        return min(WARMUP_MAX_S, WARMUP_SHARE * self.duration_s)


def edge_root() -> str:
    """The folder holding the ``edge`` package this process imported."""
    import edge

    return str(Path(edge.__file__).resolve().parent.parent)


# `python -m edge.cli` would import edge from the current folder first (sys.path[0]), which
# in a checkout may be another version than the one this soak reports on; pin it instead.
CHILD_BOOTSTRAP = ("import runpy, sys; sys.path[0] = {root!r}; "
                   "runpy.run_module('edge.cli', run_name='__main__', alter_sys=True)")


def build_edge_run_command(source_flags: list[str], model: str | None, threads: int,
                           extra: list[str], report: str | None,
                           serve: str | None = None) -> tuple[str, ...]:
    """edge-run in this interpreter, importing the same edge package as this process;
    ``serve``: its --serve spec (e.g. SERVE_SPEC), unless ``extra`` has one."""
    cmd = [sys.executable, "-c", CHILD_BOOTSTRAP.format(root=edge_root()), *source_flags,
           "--headless", "--threads", str(threads)]
    if model:
        cmd += ["--model", model]
    if serve and "--serve" not in extra:
        cmd += ["--serve", serve]
    cmd += extra
    if report:
        cmd += ["--report", report]
    return tuple(cmd)


def fit_slope(times_s: list[float], values: list[float]) -> float | None:
    """Least-squares slope (values per second); None with fewer than 2 distinct times."""
    n = len(times_s)
    if n < 2:
        return None
    mean_t, mean_v = sum(times_s) / n, sum(values) / n
    var = sum((t - mean_t) ** 2 for t in times_s)
    if var == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in zip(times_s, values, strict=True)) / var


def rss_figures(rss: list[tuple[float, int]], warmup_s: float,
                first_frame_s: float | None = None) -> dict:
    """RSS at start (the first sample once frames flow: before that the child is still
    importing) / after warm-up / end / max (MB), and the slope after the warm-up."""
    if not rss:
        return {"samples": 0}
    running = [(t, b) for t, b in rss if first_frame_s is None or t >= first_frame_s] or rss
    after = [(t, b) for t, b in rss if t >= warmup_s]
    slope = fit_slope([t for t, _ in after], [b / MB for _, b in after]) if after else None
    return {
        "samples": len(rss),
        "start_mb": round(running[0][1] / MB, 2),
        "start_s": round(running[0][0], 1),
        "after_warmup_mb": round(after[0][1] / MB, 2) if after else None,
        "end_mb": round(rss[-1][1] / MB, 2),
        "max_mb": round(max(b for _, b in rss) / MB, 2),
        "slope_mb_per_h": None if slope is None else round(slope * S_PER_H, 3),
        "slope_samples": len(after),
        "series_s_mb": [[round(t, 1), round(b / MB, 2)] for t, b in rss],
    }


def fps_blocks(status: list[tuple[float, int, float]], block_s: float) -> list[dict]:
    """Per block: frames counted (first to last status line in it) and FPS from them, plus
    the mean of the rolling FPS that edge-run reported."""
    blocks: dict[int, list[tuple[float, int, float]]] = {}
    for row in status:
        blocks.setdefault(int(row[0] // block_s), []).append(row)
    out, prev = [], None
    for index in sorted(blocks):
        rows = blocks[index]
        first = prev if prev is not None else rows[0]
        last = rows[-1]
        span = last[0] - first[0]
        frames = last[1] - first[1]
        out.append({
            "block": index, "start_s": round(index * block_s, 1),
            "end_s": round((index + 1) * block_s, 1), "frames": frames,
            "fps": round(frames / span, 1) if span > 0 else None,
            "reported_fps_mean": round(sum(r[2] for r in rows) / len(rows), 1),
        })
        prev = last
    return out


def growth_per_frame(slope_mb_per_h: float | None, blocks: list[dict],
                     warmup_s: float) -> dict:
    """The slope in bytes per frame, comparable across machines and loads (a leak grows per
    frame, so MB/h scales with FPS), from the FPS of the blocks after the warm-up."""
    after = [b for b in blocks if b["start_s"] >= warmup_s and b["fps"]]
    frames = sum(b["frames"] for b in after)
    span = sum(b["frames"] / b["fps"] for b in after)
    fps = frames / span if span > 0 else None
    per_frame = None if slope_mb_per_h is None or not fps else \
        slope_mb_per_h * MB / S_PER_H / fps
    return {"fps_after_warmup": None if fps is None else round(fps, 1),
            "bytes_per_frame": None if per_frame is None else round(per_frame, 2)}


def _edge_run_summary(report: str | None) -> dict | None:
    if not report or not Path(report).is_file():
        return None
    doc = json.loads(Path(report).read_text())
    keep = ("frames", "wall_s", "fps", "stop_reason", "stages", "non_model_share",
            "bad_frames", "nerve_area", "classes", "safety_warning_frames")
    return {k: doc[k] for k in keep if k in doc}


def coverage(watch: Watch, summary: dict | None) -> dict:
    """Which parts of the per-frame path the child ran: the nerve area (and its unit: mm2
    when the source knew its pixel size), the classes tallied, the web view's status."""
    summary = summary or {}
    area = summary.get("nerve_area") or {}
    return {
        "nerve_area_unit": area.get("unit"),
        "classes": sorted(summary.get("classes") or {}),
        "serve_url": watch.serve_url,
        "status_polls": watch.polls,
        "poll_errors": watch.poll_errors,
        "last_status_area_mm2": (watch.last_status or {}).get("area_mm2"),
    }


def run_soak(cfg: SoakConfig, log=None) -> dict:
    """Run the soak; returns the result document (see the module doc)."""
    from benchmarks.machine import describe_machine

    log = log or note
    log(f"soak: {cfg.minutes:g} min of: {shlex.join(cfg.command)}")
    watch, code, stopped_by, wall = watch_child(cfg, log)
    first_frame_s = watch.status[0][0] if watch.status else None
    rss = rss_figures(watch.rss, cfg.effective_warmup_s, first_frame_s)
    slope = rss.get("slope_mb_per_h")
    blocks = fps_blocks(watch.status, cfg.block_s)
    rss.update(growth_per_frame(slope, blocks, cfg.effective_warmup_s))
    summary = _edge_run_summary(cfg.report)
    doc = {
        "kind": "soak",
        "config": {**asdict(cfg), "command": shlex.join(cfg.command),
                   "warmup_s": cfg.effective_warmup_s},
        "machine": describe_machine(),
        "wall_s": round(wall, 1),
        "exit_code": code,
        "stopped_by": stopped_by,
        "rss": rss,
        "flat": None if slope is None else abs(slope) < TARGET_SLOPE_MB_PER_H,
        "target_slope_mb_per_h": TARGET_SLOPE_MB_PER_H,
        "frames": watch.status[-1][1] if watch.status else None,
        "fps_blocks": blocks,
        "coverage": coverage(watch, summary),
        "edge_run_summary": summary,
        "stderr_tail": watch.stderr_tail,
    }
    log(f"soak: RSS {rss.get('start_mb')} -> {rss.get('end_mb')} MB, slope after "
        f"{cfg.effective_warmup_s:.0f} s warm-up: {slope} MB/h; exit {code} ({stopped_by}); "
        f"web view polled {watch.polls} time(s)")
    return doc


def temp_report_path() -> str:
    """Where edge-run writes its summary for the soak to read back (removed afterwards)."""
    fd, path = tempfile.mkstemp(prefix="soak-report-", suffix=".json")
    os.close(fd)
    os.unlink(path)
    return path
