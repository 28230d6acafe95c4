"""Typed errors raised by edge/ library code. Only edge/cli.py turns them into exit codes.

Every message names the bad input and the fix, in one line.
"""


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


class SourceStalled(EdgeError):
    """A live source stopped delivering frames for longer than the retry budget."""
