"""The one CLI contract of the four tools (edge-run, edge-train, edge-convert, edge-bench).

- Exit codes: 0 ok, 1 runtime failure, 2 bad input (flag, path, model, missing extra),
  130 interrupted. SIGTERM (how systemd and supervisors stop a service) is handled exactly
  like Ctrl-C: it raises ``Terminated`` (a KeyboardInterrupt) in the main thread, so every
  ``except KeyboardInterrupt`` cleanup path (summary, report, playable recording, checkpoint,
  no partial files) runs for both signals.
- Errors are one line, ``PROG: error: ...``; a traceback only with ``--debug``.
- A missing optional package (tensorflow, onnx, ...) is one line with the install command
  that works from this repository.

Usage in a tool::

    def main(argv=None) -> int:
        return run_cli("edge-train", _main, argv)     # _main(argv) -> int
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence

from edge.errors import EdgeError, UserInputError

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT; SIGTERM gives the same (a normal stop)
DEBUG_FLAG = "--debug"
VERBOSE_FLAG = "--verbose"

# Optional import name -> (extra, what needs it). Installs are from the repository root: the
# package is not on a registry, so `pip install 'nerve-edge[x]'` would not work.
EXTRAS = {
    "tensorflow": ("train", "training, conversion and Keras models"),
    "tf_keras": ("train", "training, conversion and Keras models"),
    "tensorflow_model_optimization": ("convert", "pruning"),
    "tf2onnx": ("convert", "ONNX export"),
    "onnx": ("convert", "ONNX model inspection"),
    "onnxruntime": ("onnx", "running .onnx models"),
    "matplotlib": ("bench", "plots"),
    "psutil": ("bench", "memory sampling"),
    "pydicom": ("dicom", "DICOM input"),
    "highdicom": ("dicom", "DICOM Segmentation output"),
    "pynetdicom": ("dicom", "sending to a PACS"),
}


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM; handled like Ctrl-C (KeyboardInterrupt)."""


def stop_reason(exc: BaseException) -> str:
    """'terminated (SIGTERM)' or 'interrupted (Ctrl-C)' for reports and summaries."""
    return "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise Terminated()


def install_signal_handlers() -> None:
    """SIGTERM -> Terminated, SIGINT -> KeyboardInterrupt (Python's default, restored in case
    a parent process ignored it). Main thread only (signal module rule)."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def install_hint(extra: str) -> str:
    return f"pip install -e '.[{extra}]' from the nerve-edge repository root"


def missing_extra_message(module: str) -> str:
    top = module.split(".")[0]
    extra, what = EXTRAS.get(top, (None, None))
    if extra is None:
        return f"Python package {top!r} is not installed; install it with pip"
    return f"{what} needs {top!r}, which is not installed: {install_hint(extra)}"


def require(module: str):
    """Import an optional module or raise UserInputError with the install command."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] != module.split(".")[0]:
            raise  # the module exists but something it needs is missing: a real bug
        raise UserInputError(missing_extra_message(module)) from e


# Argument types shared by the tools' parsers: a bad value is argparse's one-line usage error.
def _number(kind: type, text: str, ok, expected: str):
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value != value or not ok(value):  # value != value: NaN
        raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}")
    return value


def positive_int(text: str) -> int:
    return _number(int, text, lambda v: v >= 1, "a whole number >= 1")


def positive_float(text: str) -> float:
    return _number(float, text, lambda v: 0 < v < float("inf"), "a number > 0")


def non_negative_float(text: str) -> float:
    return _number(float, text, lambda v: 0 <= v < float("inf"), "a number >= 0")


def add_common_flags(parser: argparse.ArgumentParser, verbose: bool = False) -> None:
    """--debug (tracebacks) on every tool; --verbose where a tool has noisy libraries."""
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help="print the full traceback on errors (default: one line)")
    if verbose:
        parser.add_argument(VERBOSE_FLAG, action="store_true",
                            help="show the libraries' own log lines (TensorFlow start-up "
                                 "messages; default: hidden)")


def quiet_tensorflow(verbose: bool = False) -> None:
    """Hide TensorFlow's start-up noise (cuInit, oneDNN, CPU feature lines) unless verbose.
    Call before tensorflow is imported."""
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # no GPU probing on a CPU-only machine
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


def _say_error(prog: str, text: str) -> None:
    print(f"{prog}: error: {text}", file=sys.stderr, flush=True)


def run_cli(prog: str, body: Callable[[list[str]], int | None],
            argv: Sequence[str] | None = None) -> int:
    """Run ``body(argv)`` under the contract above and return the exit code.

    argparse's own usage errors still exit 2 through SystemExit (its one-line message).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv
    install_signal_handlers()
    try:
        code = body(argv)
        return EXIT_OK if code is None else int(code)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM before the body handled it
        print(f"{prog}: {stop_reason(e)}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except EdgeError as e:
        if debug:
            traceback.print_exc()
        _say_error(prog, str(e))
        return e.exit_code
    except ModuleNotFoundError as e:
        if debug:
            traceback.print_exc()
        _say_error(prog, missing_extra_message(e.name or str(e)))
        return EXIT_USAGE
    except Exception as e:  # noqa: BLE001  a bug or a runtime failure: one line unless --debug
        if debug:
            traceback.print_exc()
        hint = "" if debug else f" (run with {DEBUG_FLAG} for the traceback)"
        _say_error(prog, f"{type(e).__name__}: {e}{hint}")
        return EXIT_RUNTIME
