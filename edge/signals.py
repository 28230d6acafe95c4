"""Ctrl-C and SIGTERM at any moment of a tool's life end it with exit 130 and one line.

Standard library only, so each entry module (edge/cli.py, train/cli.py, convert/cli.py,
benchmarks/cli.py) installs it in its first lines, before numpy, OpenCV or TensorFlow load.
A signal then means, by phase:

- **starting** (from the entry module's first lines until the tool's body runs, and inside
  ``nothing_to_save()``, e.g. TensorFlow's import): nothing is written yet, so the line is
  printed and the process leaves at once (``os._exit(130)``). Nothing is raised into the
  import machinery or into C code that is half way through initialising.
- **running**: ``KeyboardInterrupt`` (Ctrl-C) or ``Terminated`` (SIGTERM) is raised in the main
  thread, so every ``except KeyboardInterrupt`` cleanup path (summary, report, playable
  recording, checkpoint, no partial files) runs for both signals. A signal that arrives
  while a module is being imported is held back and raised as soon as the import is over:
  raised inside an import, it leaves half-initialised native modules behind (pybind11 turns
  it into "ImportError: initialization failed", and the interpreter can then abort while it
  finalizes, "Fatal Python error: PyThreadState_Get"). The same for a signal landing in code
  that C calls back and that would lose the exception (weakref callbacks, ``__del__``,
  TensorFlow's Python helpers: CALLBACK_FILES). One raised and then swallowed by C code
  anyway (nobody asked stop_reason() within RETRY_S, and no KeyboardInterrupt is being
  handled) is raised again.
- **leaving** (``finish(code)``): the tool's work is done and its line printed; the process
  ends with ``os._exit`` after the Python-level shutdown (non-daemon threads, atexit), so
  neither a late signal nor a native library's threads meet a finalizing interpreter.
  A signal meanwhile ends it with 130 (and the line, unless one was printed already).

Before the entry module's first line (the interpreter starting: ~60-200 ms after exec on a
loaded 2-core machine) no Python code can handle a signal: the kernel's default ends the
process (SIGTERM: -15, no output), or Python's own SIGINT handler raises a KeyboardInterrupt
with a traceback while ``site`` or the package imports.

Outside a program (a test calling ``main([...])`` in-process) nothing ever calls ``os._exit``:
signals are only raised as exceptions, held back during imports as above.
"""

from __future__ import annotations

import _thread
import atexit
import contextlib
import os
import signal
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator

EXIT_INTERRUPTED = 130  # 128 + SIGINT; SIGTERM gives the same (a normal stop)
REDELIVER_S = 0.02  # how often a signal held back during an import is tried again
# Frames of the import machinery (frozen in CPython 3.11+, a file with -X frozen_modules=off).
TRACE_ENV = "EDGE_SIGNAL_TRACE"  # tests: where each handled signal landed (see _trace)
RETRY_S = 1.0  # a raised signal nobody handled (C code swallowed it) is raised again after
# Code that C calls back and that loses or mangles an exception raised in it: weakref
# callbacks and __del__ ("Exception ignored in ..."), abc's isinstance hooks, TensorFlow's
# Python helpers its C++ calls (a KeyboardInterrupt there became "SystemError: <built-in
# function __import__> returned a result with an exception set" and was lost). A signal
# landing in one of the innermost CALLBACK_DEPTH frames of such code is held back like one
# during an import.
CALLBACK_FILES = tuple(os.sep + name for name in (
    "weakref.py", "_weakrefset.py", "abc.py", "_collections_abc.py", "typing.py",
    os.path.join("tensorflow", "")))
CALLBACK_DEPTH = 3
# In a program, a signal is raised only in the kit's own code (or in the standard library
# called from it: a subprocess or queue wait); in an installed library's code (TensorFlow's
# helpers that its C++ calls back, tf_keras saving through h5py) it is held back until the
# kit's code runs again: raised there it ended in "SystemError ... exception set" (exit 1)
# or h5py's "Exception ignored ... KeyError" in the sweep. Training calls the kit's code
# after every batch (train.callbacks.StopPoint), so a stop still comes within a batch.
_KIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAISE_IN = tuple(os.path.join(_KIT, pkg, "") for pkg in ("edge", "train", "convert",
                                                         "benchmarks"))
STDLIB = (os.path.join(sysconfig.get_paths()["stdlib"], ""), "<frozen ")
LIBRARY_DIRS = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)
IMPORT_FRAMES = ("<frozen importlib._bootstrap", os.path.join("importlib", "_bootstrap"))


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM; handled like Ctrl-C (KeyboardInterrupt)."""


def stop_reason(exc: BaseException) -> str:
    """'terminated (SIGTERM)' or 'interrupted (Ctrl-C)' for reports and summaries. Asking
    means the interruption is handled: it is not raised again (see RETRY_S)."""
    _S.raised = None
    return "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"


def _reason(signum: int) -> str:
    return stop_reason(Terminated() if signum == signal.SIGTERM else KeyboardInterrupt())


class _State:
    prog = "nerve-edge"
    program = False  # True: this process is the tool (may leave with os._exit)
    before_body = False  # a program whose body has not started: nothing to save yet
    starting = 0  # > 0: inside nothing_to_save()
    holding = 0  # > 0: inside held(): a signal waits for its end
    exit_code: int | None = None  # set by finish(): leaving
    pending: int | None = None  # a signal held back during an import
    stderr_fd: int | None = None  # a copy of fd 2 (fd 2 may be captured meanwhile)
    raised: int | None = None  # a signal raised but not handled yet (see RETRY_S)
    leaving = False  # _leave under way
    raised_at = 0.0
    wake = threading.Event()  # set while a signal is held back or raised and not handled
    courier: threading.Thread | None = None


_S = _State()


def launched_as(prog: str, module_name: str) -> bool:
    """True when the module calling this is the program: ``python -m``/runpy as __main__,
    or the console script ``prog`` (pip's launcher imports the module, then calls main)."""
    return module_name == "__main__" or os.path.basename(sys.argv[0] if sys.argv else "") == prog


def install_if_program(prog: str, module_name: str) -> None:
    """The first lines of an entry module: ``install(prog, program=True)`` when the module is
    the program (see launched_as); nothing when it is imported as a library."""
    if launched_as(prog, module_name):
        install(prog, program=True)


class _LineTracker:
    """sys.stderr in a program, remembering whether the text written so far ends a line: an
    interruption can come between print's text and its newline, and the stop line must still
    be a line of its own (say_stopped)."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self.at_line_start = True

    def write(self, text: str) -> int:
        if text:  # before the write: interrupted inside it, the text is out or on its way
            self.at_line_start = text.endswith("\n")
        return self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _line_start() -> str:
    """'\n' when stderr's last text did not end a line (see _LineTracker), else ''."""
    return "" if getattr(sys.stderr, "at_line_start", True) else "\n"


def say_stopped(prog: str, exc: BaseException, detail: str = "") -> None:
    """The one stop line, ``PROG: terminated (SIGTERM)[; detail]``, on a line of its own."""
    text = f"{prog}: {stop_reason(exc)}" + (f"; {detail}" if detail else "")
    print(_line_start() + text, file=sys.stderr, flush=True)


def install(prog: str, program: bool = False) -> None:
    """Handle SIGINT and SIGTERM from now on (main thread only). ``program``: this process
    is the tool itself, so it is still starting and may leave with os._exit. Installing
    again keeps ``program`` (an entry module, then run_cli)."""
    if program and not _S.program:
        _S.program = _S.before_body = True
        with contextlib.suppress(OSError):
            _S.stderr_fd = os.dup(2)
        if sys.stderr is not None and not isinstance(sys.stderr, _LineTracker):
            sys.stderr = _LineTracker(sys.stderr)
    _S.prog = prog
    _S.exit_code = None
    if threading.current_thread() is threading.main_thread():
        # Both handlers as one step: a signal that comes between the two calls waits (blocked)
        # and reaches _handle once both are in place, instead of Python's default SIGINT
        # handler raising KeyboardInterrupt in the middle of this function.
        both = {signal.SIGINT, signal.SIGTERM}
        before = signal.pthread_sigmask(signal.SIG_BLOCK, both)
        try:
            signal.signal(signal.SIGINT, _handle)
            signal.signal(signal.SIGTERM, _handle)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)


def body_started() -> None:
    """The tool's body runs from here: a signal now raises (the body's cleanup paths run)."""
    _S.before_body = False


@contextlib.contextmanager
def nothing_to_save() -> Iterator[None]:
    """A stretch (a heavy import, a start-up) that writes nothing: a signal meanwhile ends the
    program at once with its line, instead of waiting for the stretch to end."""
    _S.starting += 1
    try:  # (in a program only: in-process, a signal meanwhile raises as usual)
        yield
    finally:
        _S.starting -= 1


def finish(code: int) -> int:
    """End of the tool. In a program: flush, run the Python-level shutdown and leave with
    ``code`` without finalizing the interpreter. In-process: return ``code``."""
    _S.exit_code = code
    if not _S.program:
        return code
    if _S.pending is not None:  # held back during a last import, not raised yet: stop here
        _leave(_S.pending)
    _flush()
    shutdown_threads = getattr(threading, "_shutdown", None)  # joins non-daemon threads
    if shutdown_threads is not None and code != EXIT_INTERRUPTED:  # interrupted: leave now
        shutdown_threads()
    atexit._run_exitfuncs()  # e.g. temporary folders' finalizers
    _flush()
    os._exit(code)


def _handle(signum: int, frame) -> None:
    if _S.leaving:  # _leave is printing the line: let it finish
        return
    if _S.program and (_S.exit_code is not None or _S.before_body or _S.starting):
        _trace("leave", "leaving" if _S.exit_code is not None else "starting", frame)
        _leave(signum)
    if _S.raised is not None and isinstance(sys.exc_info()[1], KeyboardInterrupt):
        _S.raised = None  # the raised one is being handled (an except/finally path): done
        return
    if _S.holding:  # inside held(): raised at its end (a moment of the run)
        _trace("hold", "run", frame)
        _S.pending = signum
        return
    held = ("import" if _in_import(frame) else "callback" if _in_callback(frame)
            else "library" if _S.program and not _in_kit(frame) else None)
    if held:
        _trace("hold", held, frame)
        _S.pending = signum
        if held == "library":
            _raise_back_in_kit(frame)
        else:
            _redeliver_later()
        return
    _trace("raise", "run", frame)
    _raise(signum)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """A few lines that must run all or not at all (e.g. one frame counted in every
    counter): a signal meanwhile is held back and raised when they are done. Keep it short;
    nothing in it may wait. Needs the handlers installed (every tool installs them); under
    Python's default SIGINT handler it holds nothing back."""
    _S.holding += 1
    try:
        yield
    finally:
        _S.holding -= 1
    if not _S.holding:
        check()


def check() -> None:
    """A safe point in the kit's code (e.g. after each training batch): raise a signal held
    back meanwhile now, instead of waiting for the next hand-back to land in the kit's code."""
    if _S.pending is not None and _S.exit_code is None:
        _raise(_S.pending)


def _raise(signum: int) -> None:
    _S.pending = None
    if _S.program:  # raised again after RETRY_S unless handled (stop_reason) by then
        _S.raised, _S.raised_at = signum, time.monotonic()
        _redeliver_later()
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _trace(what: str, phase: str, frame) -> None:
    """With TRACE_ENV set (tests): one line per handled signal, ``what phase importing``
    (the modules being imported, outermost first), appended to that file."""
    path = os.environ.get(TRACE_ENV)
    if not path:
        return
    modules = []
    while frame is not None:
        if frame.f_code.co_name == "<module>":
            modules.append(str(frame.f_globals.get("__name__")))
        frame = frame.f_back
    with contextlib.suppress(OSError), open(path, "a") as f:
        f.write(f"{what} {phase} {','.join(reversed(modules)) or '-'}\n")


def _leave(signum: int) -> None:
    """Print the one line (unless an interrupted run printed it already) and leave now."""
    _S.leaving = True
    if _S.exit_code != EXIT_INTERRUPTED:
        _flush()
        line = f"{_line_start()}{_S.prog}: {_reason(signum)}\n".encode()
        with contextlib.suppress(OSError):
            os.write(_S.stderr_fd if _S.stderr_fd is not None else 2, line)
    os._exit(EXIT_INTERRUPTED)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _in_import(frame) -> bool:
    while frame is not None:
        if any(name in frame.f_code.co_filename for name in IMPORT_FRAMES):
            return True
        frame = frame.f_back
    return False


def _in_kit(frame) -> bool:
    """The innermost frame that is not the standard library's is the kit's own."""
    while frame is not None:
        name = frame.f_code.co_filename
        if any(root in name for root in RAISE_IN):
            return True
        if not name.startswith(STDLIB) or any(d in name for d in LIBRARY_DIRS):
            return False
        frame = frame.f_back
    return True


def _in_callback(frame) -> bool:
    for _ in range(CALLBACK_DEPTH):
        if frame is None:
            return False
        code = frame.f_code
        if code.co_name == "__del__" or any(f in code.co_filename for f in CALLBACK_FILES):
            return True
        frame = frame.f_back
    return False


def _raise_back_in_kit(frame) -> None:
    """Raise the held signal at the next line the innermost kit frame runs (the way pdb stops
    a frame: its f_trace plus a thread trace that traces nothing else). A retry timer would
    not do: the eval loop checks for signals right after C code returns, so a loop that
    spends its time in a library's wrapper (ONNX Runtime's run) would be caught there
    every time."""
    while frame is not None and not any(root in frame.f_code.co_filename for root in RAISE_IN):
        frame = frame.f_back
    if frame is None:  # no kit frame (cannot happen in a program): fall back to the timer
        _redeliver_later()
        return
    frame.f_trace = _kit_line
    frame.f_trace_lines = True
    sys.settrace(_trace_nothing)


def _trace_nothing(frame, event, arg):  # noqa: ARG001
    return None


def _kit_line(frame, event, arg):  # noqa: ARG001
    frame.f_trace = None
    sys.settrace(None)
    if _S.pending is not None and _S.exit_code is None:
        _raise(_S.pending)
    return None


def _redeliver_later() -> None:
    """A daemon thread hands the held-back signal to the main thread again every
    REDELIVER_S until the import is over (then _handle raises it)."""
    _S.wake.set()
    if _S.courier is None:
        _S.courier = threading.Thread(target=_courier, name="signal-courier", daemon=True)
        _S.courier.start()


def _deliver(signum: int) -> None:
    """A swallowed signal again, to the main thread: a real one, so a blocking call there
    (sleep, a queue) wakes up and the handler runs now (at most once per RETRY_S: C code may
    not expect EINTR). Not if someone replaced the handler since."""
    if signal.getsignal(signum) is not _handle:
        _S.pending = _S.raised = None
    elif hasattr(signal, "pthread_kill"):
        signal.pthread_kill(threading.main_thread().ident, signum)
    else:
        _thread.interrupt_main(signum)


def _courier() -> None:
    while True:
        _S.wake.wait()
        time.sleep(REDELIVER_S)
        signum = _S.pending
        if signum is not None:  # the main thread is running Python code (an import, a
            _thread.interrupt_main(signum)  # callback): no real signal, no EINTR in C code
            continue
        raised = _S.raised
        if raised is not None:
            if time.monotonic() - _S.raised_at >= RETRY_S:
                _S.raised_at = time.monotonic()
                _deliver(raised)
            continue
        _S.wake.clear()
        if _S.pending is not None or _S.raised is not None:  # set between the read and clear
            _S.wake.set()
