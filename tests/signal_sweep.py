"""Ctrl-C and SIGTERM sent to a tool at several points of its life, REPEATS times each point:
every send must end the tool with exit 130 and one line on stderr (no traceback, no "Fatal
Python error"). Used by tests/edge/test_signals_any_moment.py (edge-run, edge-bench: no
TensorFlow) and tests/train/test_tf_tools_signals_any_moment.py (edge-train, edge-convert).

How a send is timed (the sender is always this test process, with os.kill):
- ``first-lines``: as soon as /proc/PID/status shows SIGTERM caught, i.e. the entry module's
  first lines have run (before that the interpreter itself is starting: no Python program can
  handle a signal there, the kernel's default ends it).
- ``imports``: the child runs the tool under a small launcher whose audit hook counts the
  import statements executed while HEAVY (numpy, tensorflow) is being imported; it announces
  statement number k on a pipe and the test sends at once, with k spread over the count a
  first probe run measured, so the sends land all along that import.
- ``start-up``, ``run``, ``shutdown``: after a marker the tool writes (the end of HEAVY's
  import, an output line, a file), plus a delay spread over the window the probe measured.
  Half of the shutdown sends wait instead for the launcher's own atexit function (the last
  one to run), which announces itself and then sleeps ATEXIT_S: the Python-level shutdown
  made long enough to be hit every time. A send in the last instants (os._exit under way)
  is never handled: the tool ends with its own exit code, counted as "missed".
The child's edge.signals writes where each signal landed (EDGE_SIGNAL_TRACE); the test keeps a
tally per point, printed at the end (pytest -s) and returned.
"""

from __future__ import annotations

import collections
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPEATS = int(os.environ.get("NERVE_EDGE_SIGNAL_REPEATS", "20"))  # sends per point
SIGNALS = (signal.SIGTERM, signal.SIGINT)  # alternated: REPEATS sends per point in all
EXIT_TIMEOUT_S = 120.0
WAIT_S = 300.0  # a marker (TensorFlow's import on a loaded 2-core machine is slow)
POLL_S = 0.002
ATEXIT_S = 0.3  # how long the launcher's atexit function keeps the shutdown going
STOP_LINES = {signal.SIGTERM: "terminated (SIGTERM)", signal.SIGINT: "interrupted (Ctrl-C)"}
FATAL = ("Traceback", "Fatal Python error", "Exception ignored", "Error in atexit")

# The child: count import statements inside HEAVY's import, announce them on fd PIPE_FD,
# then run the tool's module as `python -m MODULE ARGS` would.
LAUNCHER = r"""
import os, sys, runpy
fd, heavy, at = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
module, args = sys.argv[4], sys.argv[5:]
n = -1
def hook(event, a):
    global n
    if event != "import" or n == -2:
        return
    if n == -1:
        if a[0] != heavy and not a[0].startswith(heavy + "."):  # import_module: no event
            return
        os.write(fd, b"start\n")
    n += 1
    spec = getattr(sys.modules.get(heavy), "__spec__", None)
    if n > 0 and spec is not None and not getattr(spec, "_initializing", False):
        os.write(fd, b"done %d\n" % n)
        n = -2
    elif n == at:
        os.write(fd, b"at %d\n" % n)
sys.addaudithook(hook)
def leaving():  # the last atexit function: announce it, then take a while (see at_exit)
    import time
    os.write(fd, b"atexit\n")
    time.sleep(float(os.environ.get("SIGNAL_SWEEP_ATEXIT_S", "0")))
import atexit
atexit.register(leaving)
sys.argv = [module, *args]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


@dataclass
class Tool:
    prog: str  # edge-run
    module: str  # edge.cli
    args: list[str]
    heavy: str  # the heavy import to sweep (numpy, tensorflow)
    run_marker: tuple[str, str]  # (file in tmp, text): the run has started
    end_marker: tuple[str, str]  # (file in tmp, text): the run's last output
    allowed: tuple[str, ...] = ()  # prefixes of the stderr lines a normal run prints
    clean: tuple[str, ...] = ()  # outputs (in tmp) removed before each start
    python: str = sys.executable
    env: dict = field(default_factory=dict)


@dataclass
class Child:
    proc: subprocess.Popen
    pipe: int
    out: Path
    err: Path
    trace: Path
    started: float = field(default_factory=time.monotonic)
    buf: bytes = b""

    def wait_pipe(self, prefix: str) -> tuple[float, str]:
        """Block until the launcher writes a line starting with prefix: (when, the line)."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                if line.decode().startswith(prefix):
                    return time.monotonic(), line.decode()
            if self.proc.poll() is not None:
                raise AssertionError(f"ended (exit {self.proc.returncode}) before {prefix!r}: "
                                     f"{self.err.read_text()[-2000:]}")
            ready, _, _ = select.select([self.pipe], [], [], 0.5)
            if ready:
                self.buf += os.read(self.pipe, 4096)
        raise AssertionError(f"no {prefix!r} from the launcher in {WAIT_S} s")

    def wait_until(self, ready: Callable[[], bool]) -> float:
        deadline = time.monotonic() + WAIT_S
        while not ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"ended (exit {self.proc.returncode}) before the marker:"
                                     f" {self.err.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no marker in {WAIT_S} s")
            time.sleep(POLL_S)
        return time.monotonic()

    def alive(self) -> bool:
        """Running (not ended, not a zombie waiting to be reaped)."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return False
        return "\nState:\tZ" not in status and "\nState:\tX" not in status


def spawn(tool: Tool, tmp: Path, at: int = -3, atexit_s: float = 0.0) -> Child:
    for name in ("out.txt", "err.txt", "trace.txt", *tool.clean):
        path = tmp / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    read_fd, write_fd = os.pipe()
    env = dict(os.environ, PYTHONUNBUFFERED="1", EDGE_SIGNAL_TRACE=str(tmp / "trace.txt"),
               SIGNAL_SWEEP_ATEXIT_S=str(atexit_s),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                        os.environ.get("PYTHONPATH")])))
    env.update(tool.env)
    with open(tmp / "out.txt", "w") as out, open(tmp / "err.txt", "w") as err:
        proc = subprocess.Popen(
            [tool.python, "-c", LAUNCHER, str(write_fd), tool.heavy, str(at), tool.module,
             *tool.args], stdout=out, stderr=err, env=env, cwd=tmp, pass_fds=(write_fd,))
    os.close(write_fd)
    return Child(proc, read_fd, tmp / "out.txt", tmp / "err.txt", tmp / "trace.txt")


def handler_installed(pid: int) -> bool:
    """SIGTERM is in the caught set: edge.signals is installed (Python leaves it default)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = int(text.split("SigCgt:")[1].split()[0], 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def finish(child: Child) -> tuple[int, str, str]:
    try:
        rc = child.proc.wait(timeout=EXIT_TIMEOUT_S)
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait()
        os.close(child.pipe)
    trace = child.trace.read_text() if child.trace.exists() else ""
    return rc, child.err.read_text(), trace


def probe(tool: Tool, tmp: Path, *markers: Callable[[Child], float]) -> dict:
    """One run without a signal: how many modules HEAVY's import loads ("imports"), and when,
    in seconds after HEAVY's import ended, each marker showed up ("markers") and the process
    ended ("ended_s")."""
    child = spawn(tool, tmp)
    child.wait_pipe("start")
    done, line = child.wait_pipe("done")
    seen = [marker(child) - done for marker in markers]
    rc, err, _ = finish(child)
    assert rc == 0, err[-3000:]
    return {"imports": int(line.split()[1]), "markers": seen,
            "ended_s": time.monotonic() - done}


def _landing(trace: str, heavy: str) -> str:
    """Where the first handled signal landed: its phase ('starting', 'import', 'run',
    'leaving'), with the import under way if any (HEAVY's own, or the outermost one), or
    'missed' (the tool ended before it could handle it)."""
    first = trace.split("\n")[0]
    if not first:
        return "missed"
    _, phase, modules = first.split(" ", 2)
    importing = [m for m in modules.split(",") if m not in ("__main__", "-")]
    if not importing:
        return phase
    if any(m.split(".")[0] == heavy for m in importing):
        return f"{phase} (in {heavy}'s import)"
    return f"{phase} (in {importing[0]}'s import)"


def check(tool: Tool, signum: int, rc: int, err: str, trace: str, landing: str,
          allowed_lines: tuple[str, ...]) -> None:
    """130 and one stop line (the last), no traceback; other stderr lines only the tool's
    own progress lines (allowed_lines prefixes). A send that missed (the tool had ended) must
    leave a clean exit 0."""
    for bad in FATAL:
        assert bad not in err, (landing, err[-3000:])
    if landing in ("missed", "ended before the send") and rc == 0:
        return
    assert rc == 130, (STOP_LINES[signum], landing, rc, err[-3000:], trace)
    lines = err.strip().splitlines()
    stops = [ln for ln in lines if ln.startswith(f"{tool.prog}: {STOP_LINES[signum]}")]
    assert len(stops) == 1 and lines[-1] == stops[0], (landing, err[-3000:])
    others = [ln for ln in lines[:-1] if not ln.startswith(allowed_lines)
              and "Warning: " not in ln]  # a library's warnings.warn line
    assert not others, (landing, others)


def sweep(tool: Tool, tmp: Path, point: str, send: Callable[[Child, int], bool],
          at: Callable[[int], int] = lambda i: -3, atexit_s: Callable[[int], float] = lambda i: 0,
          allowed_lines: tuple[str, ...] = (), n: int = REPEATS) -> collections.Counter:
    """n sends at one point (alternating SIGTERM, SIGINT); returns where they landed.
    send(child, i) waits for the point and returns False when the tool ended first; at(i) and
    atexit_s(i): the launcher's settings for send i."""
    tally: collections.Counter = collections.Counter()
    for i in range(n):
        signum = SIGNALS[i % len(SIGNALS)]
        child = spawn(tool, tmp, at(i), atexit_s(i))
        sent = send(child, i) and child.alive()
        if sent:
            os.kill(child.proc.pid, signum)
        rc, err, trace = finish(child)
        landing = _landing(trace, tool.heavy) if sent else "ended before the send"
        tally[landing] += 1
        check(tool, signum, rc, err, trace, landing, allowed_lines)
    print(f"\n{tool.prog} {point}: {n} sends, landed: {dict(tally)}", file=sys.stderr)
    return tally


def spread(i: int, window: float, n: int = REPEATS) -> float:
    """The i-th of n values spread evenly over [0, window) (delays, import counts)."""
    return window * (i + 0.5) / n


def first_lines(child: Child, i: int) -> bool:  # noqa: ARG001
    """Send as soon as the entry module's first lines installed the handlers."""
    child.wait_until(lambda: handler_installed(child.proc.pid))
    return True


def at_import(child: Child, i: int) -> bool:  # noqa: ARG001
    """Send when the launcher announces the import statement it was given (spawn's at)."""
    child.wait_pipe("at ")
    return True


def after(marker: Callable[[Child], object], window_s: float,
          n: int = REPEATS) -> Callable[[Child, int], bool]:
    """Send a spread delay (over window_s) after marker(child) returned."""
    def send(child: Child, i: int) -> bool:
        start = marker(child)
        start = start[0] if isinstance(start, tuple) else start
        time.sleep(max(0.0, start + spread(i, window_s, n) - time.monotonic()))
        return True
    return send


def shutdown(end_marker: Callable[[Child], float], window_s: float, n: int = REPEATS) -> dict:
    """sweep() settings for the shutdown point: sends 0, 1 (one of each signal) after the run's
    last output line, spread over what was left of the probe's life; sends 2, 3 in the
    Python-level shutdown made long (at_exit); and so on."""
    def in_atexit(i: int) -> bool:
        return (i // 2) % 2 == 1

    late, during = after(end_marker, window_s, n), after(at_exit, ATEXIT_S, n)
    return dict(send=lambda child, i: (during if in_atexit(i) else late)(child, i),
                atexit_s=lambda i: ATEXIT_S if in_atexit(i) else 0.0)


def at_exit(child: Child) -> float:
    """The tool's work is done and its Python-level shutdown (atexit) under way: the launcher
    announces it from an atexit function that then sleeps ATEXIT_S."""
    return child.wait_pipe("atexit")[0]


def heavy_done(child: Child) -> float:
    child.wait_pipe("start")
    return child.wait_pipe("done")[0]


def file_shows(path: Path, text: str) -> Callable[[Child], float]:
    """A marker: ``text`` appears in the file (the tool's stdout/stderr or an output)."""
    def marker(child: Child) -> float:
        target = path if path.is_absolute() else child.out.parent / path
        return child.wait_until(lambda: target.exists() and text in target.read_text())
    return marker


ALL_POINTS = ("first-lines", "imports", "start-up", "run", "shutdown")
POINTS = tuple(os.environ.get("NERVE_EDGE_SIGNAL_POINTS",  # a subset, e.g. to debug one
                               ",".join(ALL_POINTS)).split(","))


def sweep_all(tool: Tool, tmp: Path, points=POINTS, repeats: dict | None = None) -> dict:
    """A probe run, then REPEATS sends at each point (repeats: fewer at some points, by
    name); returns {point: where they landed}."""
    n = {point: (repeats or {}).get(point, REPEATS) for point in ALL_POINTS}
    run_marker = file_shows(Path(tool.run_marker[0]), tool.run_marker[1])
    end_marker = file_shows(Path(tool.end_marker[0]), tool.end_marker[1])
    p = probe(tool, tmp, run_marker, end_marker)
    started_s, ended_run_s = p["markers"]
    print(f"\n{tool.prog} probe: {p}", file=sys.stderr)
    plan = {
        "first-lines": dict(send=first_lines),
        "imports": dict(send=at_import,
                        at=lambda i: int(spread(i, 0.95 * p["imports"], n["imports"]))),
        "start-up": dict(send=after(heavy_done, started_s, n["start-up"])),
        "run": dict(send=after(run_marker, 0.5 * (ended_run_s - started_s),  # load varies
                               n["run"])),
        "shutdown": shutdown(end_marker, p["ended_s"] - ended_run_s, n["shutdown"]),
    }
    return {point: sweep(tool, tmp, point, allowed_lines=tool.allowed, n=n[point],
                         **plan[point]) for point in points}


def assert_swept(tallies: dict, heavy: str, repeats: dict | None = None) -> None:
    """Every point got its sends; the import sweep landed inside HEAVY's import and the run
    sweep in the run, mostly (a few may land just before or after, under load)."""
    for point, tally in tallies.items():
        assert sum(tally.values()) == (repeats or {}).get(point, REPEATS), point
    if "imports" in tallies:
        inside = sum(k for where, k in tallies["imports"].items() if f"{heavy}'s" in where)
        assert inside >= sum(tallies["imports"].values()) // 2, tallies["imports"]
    if "run" in tallies:  # raised in the run, or held first (an import, a library, a callback)
        in_run = sum(k for where, k in tallies["run"].items()
                     if where.startswith(("run", "import", "library", "callback")))
        assert in_run >= sum(tallies["run"].values()) // 2, tallies["run"]
