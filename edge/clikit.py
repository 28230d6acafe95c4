"""The one CLI contract of the five tools (edge-run, edge-train, edge-convert, edge-bench,
edge-deploy).

- Exit codes: 0 ok, 1 runtime failure, 2 bad input (flag, path, model, missing extra),
  130 interrupted. SIGTERM (how systemd and supervisors stop a service) is handled exactly
  like Ctrl-C: it raises ``Terminated`` (a KeyboardInterrupt) in the main thread, so every
  ``except KeyboardInterrupt`` cleanup path (summary, report, playable recording, checkpoint,
  no partial files) runs for both signals. Before that (start-up, heavy imports) and after
  (leaving), a signal ends the program at once with 130 and its one line: edge.signals, which
  each entry module installs in its first lines.
- Errors are one line, ``PROG: error: ...``; a traceback only with ``--debug``.
- A missing optional package (tensorflow, onnx, ...) is one line with the install command
  that works from this repository.

Usage in a tool::

    from edge import signals                          # the module's first lines
    signals.install_if_program("edge-train", __name__)
    ...
    def main(argv=None) -> int:
        return signals.finish(run_cli("edge-train", _main, argv))   # _main(argv) -> int
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from edge import log, signals
from edge.deps import (  # noqa: F401  (re-exported: the tools' names for them)
    EXTRAS,
    TF_IMPORT_NOISE,
    MissingExtra,
    install_hint,
    missing_extra_message,
    native_stderr_without,
    quiet_tensorflow,
    require,
    tensorflow_is_quiet,
)
from edge.errors import EdgeError
from edge.log import config_block  # noqa: F401  (re-exported for the CLIs)
from edge.signals import Terminated, stop_reason  # noqa: F401  (the tools' names for them)

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT; SIGTERM gives the same (a normal stop)
DEBUG_FLAG = "--debug"
VERBOSE_FLAG = "--verbose"


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


def _say_error(prog: str, text: str) -> None:
    print(f"{prog}: error: {text}", file=sys.stderr, flush=True)


def run_cli(prog: str, body: Callable[[list[str]], int | None],
            argv: Sequence[str] | None = None) -> int:
    """Run ``body(argv)`` under the contract above and return the exit code.

    argparse's own usage errors still exit 2 through SystemExit (its one-line message).
    """
    program = argv is None  # run as the program (the entry module usually said so already)
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv
    signals.install(prog, program=program)  # the entry module installed them first
    signals.body_started()  # a signal now raises, so the body's cleanup paths run
    log.configure(prog)  # the one message channel (edge.log), set up once per run
    try:
        code = body(argv)
        return EXIT_OK if code is None else int(code)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM before the body handled it
        signals.say_stopped(prog, e)
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


# ---------------------------------------------------------------- shared by the four CLIs
# (argument types, help formatting, the resolved-config block)


class ArgumentParser(argparse.ArgumentParser):
    """The five tools' parser: a usage error is one line, ``PROG: error: MESSAGE (see PROG
    --help)``, exit 2 (SystemExit, as argparse does), instead of argparse's full usage block
    before the line that matters. Subcommand parsers (add_subparsers) are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples in the epilog kept as written, and every option's default shown (unless its
    help already says what happens by default, e.g. "(None: the run's)")."""

    def _get_help_string(self, action) -> str:
        text = action.help or ""
        if not action.option_strings or action.required or action.default is argparse.SUPPRESS:
            return text
        if "default" in text or "(None:" in text:
            return text
        if action.default is None:
            return f"{text} (default: none)"
        if action.default is False and action.nargs == 0:
            return f"{text} (default: off)"
        if isinstance(action.default, (tuple, list)):  # as it is typed: 1,2
            return f"{text} (default: {','.join(str(v) for v in action.default)})"
        return f"{text} (default: %(default)s)"


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _number(int, text, lambda v: v >= 0, "a whole number >= 0")


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1)."""
    return _number(float, text, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")


def int_list(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated positive integers, e.g. 1,2."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected integers like 1,2") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive integers like 1,2")
    return values


def str_list(text: str) -> tuple[str, ...]:
    """argparse type: comma-separated words, e.g. int8,onnx."""
    return tuple(v.strip() for v in text.split(",") if v.strip())


def hw(text: str) -> tuple[int, int]:
    """argparse type: HxW in pixels, e.g. 128x176."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HxW, e.g. 128x176") from None
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes must be positive")
    return h, w


def roi(text: str) -> tuple[int, int, int, int]:
    """argparse type: x,y,w,h in frame pixels."""
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not x,y,w,h") from None
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: x, y >= 0 and w, h > 0")
    return x, y, w, h


def add_postprocess_flags(p: argparse.ArgumentParser, whose: str) -> None:
    """--threshold / --min-area / --presence-threshold: override the post-processing a model
    comes with (``whose``: where it comes from otherwise, for the help text)."""
    p.add_argument("--threshold", type=float, default=None,
                   help=f"mask probability threshold (None: {whose}, else 0.5)")
    p.add_argument("--min-area", type=non_negative_int, default=None,
                   help=f"drop nerve components under this many model-input pixels (None: "
                        f"{whose}, else 0)")
    p.add_argument("--presence-threshold", type=float, default=None,
                   help=f"empty the mask below this presence score (None: {whose}, else 0.5)")
