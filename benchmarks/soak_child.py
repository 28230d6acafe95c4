"""edge-bench soak's child: edge-run started, watched (RSS samples, its status lines, its web
view polled as a watching browser would) and stopped the way a user stops it. The figures
drawn from what it collects live in benchmarks/soak.py."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

MB = 1e6  # decimal megabytes, like the figures
PROC_SELF_STATUS = Path("/proc/self/status")
KB = 1024  # /proc/PID/status reports kB (KiB)
STATUS_RE = re.compile(r"edge-run: frame (\d+), ([0-9.]+) FPS")
SERVE_RE = re.compile(r"serve: clinic view at (http://\S+)")
POLL_PATHS = ("/status.json", "/metrics", "/frame.jpg")  # what a watching browser asks for
POLL_TIMEOUT_S = 5.0
STOP_GRACE_S = 30.0  # after SIGINT, how long the child may take to write its summary
KILL_GRACE_S = 5.0  # after SIGTERM, before SIGKILL


class ChildPlan(Protocol):
    """What watch_child needs of a soak's config (benchmarks.soak.SoakConfig has it)."""

    command: tuple[str, ...]
    sample_s: float
    block_s: float

    @property
    def duration_s(self) -> float: ...


def read_rss_bytes(pid: int) -> int | None:
    """Resident memory of ``pid`` in bytes, or None once it has gone."""
    if not PROC_SELF_STATUS.exists():
        import psutil  # not Linux: the [train] extra has it

        try:
            return int(psutil.Process(pid).memory_info().rss)
        except psutil.Error:
            return None
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * KB
    return None  # a zombie has no VmRSS line


def parse_status(line: str) -> tuple[int, float] | None:
    """``edge-run: frame N, X FPS, ...`` -> (N, X); None for any other line."""
    match = STATUS_RE.search(line)
    return (int(match[1]), float(match[2])) if match else None


@dataclass
class Watch:
    """What the sampler and the stderr reader collect while the child runs."""

    rss: list[tuple[float, int]] = field(default_factory=list)  # (t_s, bytes)
    status: list[tuple[float, int, float]] = field(default_factory=list)  # (t_s, frame, fps)
    stderr_tail: list[str] = field(default_factory=list)
    serve_url: str | None = None  # the child's web view, from its stdout
    polls: int = 0  # rounds of POLL_PATHS answered
    poll_errors: list[str] = field(default_factory=list)  # the last few failures
    last_status: dict | None = None  # the last /status.json


STDERR_TAIL_LINES = 20  # kept for the result when the child fails


def _read_stderr(stream, watch: Watch, t0: float) -> None:
    for raw in stream:
        line = raw.decode(errors="replace").rstrip()
        got = parse_status(line)
        if got is not None:
            watch.status.append((time.monotonic() - t0, *got))
        else:
            watch.stderr_tail = (watch.stderr_tail + [line])[-STDERR_TAIL_LINES:]


def _read_stdout(stream, watch: Watch) -> None:
    """Drain the child's stdout (a full pipe would block it), noting the web view's URL."""
    for raw in stream:
        if watch.serve_url is None:
            match = SERVE_RE.search(raw.decode(errors="replace"))
            if match:
                watch.serve_url = match[1]


def poll_urls(serve_url: str) -> list[str]:
    """POLL_PATHS on the server of ``serve_url``, keeping its token query."""
    parts = urllib.parse.urlsplit(serve_url)
    return [urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
            for path in POLL_PATHS]


def _poll(watch: Watch) -> None:
    """One round of a watching browser's requests once frames flow (before, /frame.jpg has
    nothing to show); failures are noted, never fatal."""
    if watch.serve_url is None or not watch.status:
        return
    try:
        for url in poll_urls(watch.serve_url):
            with urllib.request.urlopen(url, timeout=POLL_TIMEOUT_S) as answer:
                body = answer.read()
            if url.split("?")[0].endswith("/status.json"):
                watch.last_status = json.loads(body)
        watch.polls += 1
    except (OSError, ValueError) as e:  # URLError and timeouts are OSErrors
        watch.poll_errors = (watch.poll_errors + [str(e)])[-STDERR_TAIL_LINES:]


def _default_sigint() -> None:
    """In the child before exec: a soak started in the background (``cmd &``, nohup) inherits
    SIGINT ignored, and Python then never turns SIGINT into KeyboardInterrupt; the normal
    stop (summary, report, finished recording) needs it back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop(proc: subprocess.Popen) -> str:
    """SIGINT (edge-run's normal stop), then SIGTERM, then SIGKILL; returns how it ended."""
    for sig, grace, how in ((signal.SIGINT, STOP_GRACE_S, "SIGINT"),
                            (signal.SIGTERM, KILL_GRACE_S, "SIGTERM"),
                            (signal.SIGKILL, None, "SIGKILL")):
        if proc.poll() is not None:
            return how
        proc.send_signal(sig)
        try:
            proc.wait(grace)
            return how
        except subprocess.TimeoutExpired:
            continue
    return "SIGKILL"


def watch_child(cfg: ChildPlan, log) -> tuple[Watch, int, str, float]:
    """Run the child for cfg.minutes, sampling; returns (watch, exit code, stop, wall s)."""
    watch = Watch()
    t0 = time.monotonic()
    proc = subprocess.Popen(cfg.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_default_sigint)
    reader = threading.Thread(target=_read_stderr, args=(proc.stderr, watch, t0), daemon=True)
    reader.start()
    threading.Thread(target=_read_stdout, args=(proc.stdout, watch), daemon=True).start()
    stopped_by = "exited by itself"
    next_log = t0 + cfg.block_s
    try:
        while (now := time.monotonic()) - t0 < cfg.duration_s:
            rss = read_rss_bytes(proc.pid) if proc.poll() is None else None
            if rss is None:
                break
            watch.rss.append((now - t0, rss))
            _poll(watch)
            if now >= next_log:
                next_log += cfg.block_s
                frames = watch.status[-1][1] if watch.status else 0
                log(f"soak: {now - t0:6.0f} s  RSS {rss / MB:7.1f} MB  frame {frames}")
            time.sleep(min(cfg.sample_s, max(0.0, cfg.duration_s - (now - t0))))
        else:
            stopped_by = _stop(proc)
    finally:
        if proc.poll() is None:
            stopped_by = _stop(proc)
    reader.join(KILL_GRACE_S)
    return watch, proc.returncode, stopped_by, time.monotonic() - t0
