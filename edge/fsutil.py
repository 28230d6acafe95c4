"""Small file-system utilities, written once: atomic writes, "can I write here", format by
suffix. Every tool (edge, train, convert, benchmarks) uses these; none keeps its own copy.

Atomic = temp file in the same folder + ``os.replace``: a killed run never leaves half a file.
Published files get the mode ``open()`` would give (0666 minus the user's umask), not the
0600 that ``mkstemp`` makes.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge.errors import OutputError, UserInputError

FILE_MODE = 0o666  # before the umask, like open()
DIR_MODE = 0o777
TMP_PREFIX = "."
TMP_SUFFIX = ".tmp"

# Model formats by file suffix: the one table every tool reads.
MODEL_FORMATS = {".tflite": "tflite", ".onnx": "onnx", ".keras": "keras", ".h5": "keras"}


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` gives a new file under this process's umask."""
    return FILE_MODE & ~umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path next to ``path`` (same suffix, so writers that pick a format by suffix
    work); on success it is renamed onto ``path`` with the default file mode; on any error or
    interruption the temp file is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TMP_PREFIX}{path.stem}.",
                               suffix=f"{TMP_SUFFIX}{path.suffix}")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, default_file_mode())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def _probe(folder: Path, what: str, shown: Path) -> None:
    """Create and remove a real temp file in ``folder``: the only test that also holds for
    root, /proc and read-only mounts (``os.access`` says yes to root everywhere)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{TMP_PREFIX}write-probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise OutputError(f"{what} {shown}: folder {folder} is not writable "
                          f"({e.strerror or e}); choose another path") from e


def check_writable_file(path: str | os.PathLike, what: str = "output") -> Path:
    """Prove ``path`` can be written *now*, before any work. Raises OutputError naming the
    flag/input and the fix."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder; give a file name inside it")
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"{what} {path}: folder {folder} does not exist; create it first")
    _probe(folder, what, path)
    return path


def check_writable_dir(path: str | os.PathLike, what: str = "output folder",
                       create: bool = True) -> Path:
    """Make (if ``create``) and prove a folder writable by creating and removing a temp file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path} is a file; give a folder")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{what} {path}: cannot create the folder ({e.strerror or e}); "
                              f"choose a writable path") from e
    elif not path.is_dir():
        raise OutputError(f"{what} {path} does not exist; create it first")
    _probe(path, what, path)
    return path


def systemd_state_dir() -> Path | None:
    """The unit's state folder when systemd runs us (``$STATE_DIRECTORY``, a colon-separated
    list: ours first), else None. The web view's keys and edge-deploy's models both live there."""
    value = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(value) if value else None


def model_format(path: str | os.PathLike) -> str:
    """'tflite' | 'onnx' | 'keras' from the suffix; UserInputError naming the file otherwise.
    A Keras run folder (with model.keras inside) counts as 'keras'."""
    path = Path(path)
    if path.is_dir() and (path / "model.keras").is_file():
        return "keras"
    fmt = MODEL_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(MODEL_FORMATS))
        raise UserInputError(f"{path}: unknown model format {path.suffix!r}; use one of {known}")
    return fmt
