"""One channel for the tools' messages, over the standard ``logging`` module.

- ``say(text)``: a note or a step's outcome ("resuming from ...", "init: weights from ...")
  -> stdout, as the tools always printed them (the Keras progress bar shares it).
- ``note(text)``: a line for the user's eyes, not a result: progress ("loading frames:
  500/2036"), "wrote FILE", a resolved config -> stderr, so a tool's stdout stays its results.
- ``warn(text)``: ``PROG: warning: text`` -> stderr.

The modules' own loggers (``logging.getLogger(__name__)`` in edge/io/, edge/io/dicom/ ...)
are children of the channel's logger, named ``edge`` for that reason: their warnings reach
the same handler (``PROG: warning: text`` on stderr); their info and debug records stay
unprinted, as before the channel existed.

Results the user asked for (tables, JSON) are printed to stdout by the CLI layer itself;
errors are clikit's one line. Configured once, by the CLI entry (``edge.clikit.run_cli``
calls ``configure(prog)``); library code used without a CLI (tests, notebooks) gets the same
routing on its first message. Streams are looked up when a line is written, so a test that
swaps sys.stdout/sys.stderr (pytest's capsys) sees the lines.
"""

from __future__ import annotations

import dataclasses
import logging
import sys

LOGGER = "edge"  # the one logger, parent of edge's module loggers; other libraries' are left alone
DEFAULT_PROG = "nerve-edge"
_NOTE = "note"  # record attribute: a note (stderr although INFO)


class _Stream(logging.Handler):
    """Writes one line to sys.stdout or sys.stderr, whichever is current at that moment."""

    def __init__(self, to_stderr) -> None:
        super().__init__()
        self.to_stderr = to_stderr  # record -> bool

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stderr if self.to_stderr(record) else sys.stdout
        try:
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001  a closed stream must not end the run
            self.handleError(record)


class _Format(logging.Formatter):
    def __init__(self, prog: str) -> None:
        super().__init__("%(message)s")
        self.prog = prog

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return f"{self.prog}: warning: {text}" if record.levelno >= logging.WARNING else text


def _to_stderr(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or getattr(record, _NOTE, False)


def _shown(record: logging.LogRecord) -> bool:
    """say/note/warn lines, and the module loggers' warnings and errors."""
    return record.name == LOGGER or record.levelno >= logging.WARNING


def configure(prog: str = DEFAULT_PROG) -> logging.Logger:
    """Route the kit's messages (see the module doc), naming ``prog`` in warnings. Calling it
    again (another tool's main in the same process) replaces the routing, never adds to it."""
    logger = logging.getLogger(LOGGER)
    handler = _Stream(_to_stderr)
    handler.setFormatter(_Format(prog))
    handler.addFilter(_shown)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False  # a host application's root handlers do not print it twice
    return logger


def _logger() -> logging.Logger:
    logger = logging.getLogger(LOGGER)
    return logger if logger.handlers else configure()


def say(text: str) -> None:
    _logger().info(text)


def note(text: str) -> None:
    _logger().info(text, extra={_NOTE: True})


def warn(text: str) -> None:
    _logger().warning(text)


def _plain(value) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return " ".join(f"{k}={_plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(str(_plain(v)) for v in value) or "-"
    return "-" if value is None else value


def config_block(title: str, cfg) -> str:
    """A resolved config (a dataclass or a dict) as a short readable block, one
    ``  name: value`` line per field (nested configs on one line), for the start of a run."""
    fields = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)
    width = max((len(k) for k in fields), default=0)
    lines = [f"{title}:"] + [f"  {k:<{width}}  {_plain(v)}" for k, v in fields.items()]
    return "\n".join(lines)
