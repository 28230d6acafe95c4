"""Typed errors raised by edge/ library code. Only edge/cli.py turns them into exit codes.

Every message names the bad input and the fix, in one line.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base class. ``exit_code`` is what the CLI returns for it."""

    exit_code = 1


class UserInputError(EdgeError):
    """Bad input from the user (path, flag value, model): CLI exit 2."""

    exit_code = 2


class SourceError(UserInputError):
    """A frame source cannot be opened (missing camera, unreadable video, empty folder)."""


class ModelError(UserInputError):
    """A model file is missing, not a model, or has an input we cannot feed."""


class RoiError(UserInputError):
    """The --roi rectangle does not fit inside the frame."""


class OutputError(UserInputError):
    """An output path (--record, --save-masks, --report) cannot be written."""


class BadFrame(SourceError):
    """One frame of a file source cannot be decoded (a corrupt image in a folder, a broken
    video frame). The source has moved past it: the loop skips it or stops (--on-bad-frame)."""


class SourceLost(EdgeError):
    """A live source (camera, stream) delivered no frame for its whole retry budget: a
    runtime failure (exit 1), so a supervisor restarts the service."""

    @classmethod
    def after(cls, label: str, seconds: float) -> SourceLost:
        return cls(f"source {label} lost: no frame for {seconds:.1f} s (--retry-s); check its "
                   f"cable, power or network, or allow longer with --retry-s")
