"""Shared by every conversion step: typed errors, file sizes, converter versions, and the
staging folder the chain writes into before publishing (renamed into place only on success).

File writes go through edge.fsutil (atomic), Keras models load through train.modelio (the one
loader). Library code raises; only convert/cli.py turns errors into exit codes (edge.errors:
2 = bad input, 1 = runtime failure such as a failed gate).
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path

import train  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow loads)
from edge.errors import EdgeError
from edge.fsutil import DIR_MODE, atomic_path, check_writable_dir, default_file_mode, umask

GZIP_LEVEL = 9  # what a release archive would use: the size a download really costs
STAGE_MARK = ".tmp-"  # staging folder: .OUT.tmp-PID-XXXX next to OUT
OLD_MARK = ".old-"  # a replaced OUT on its way out: .OUT.old-PID-XXXX
CONVERTER_PACKAGES = (
    "tensorflow",
    "tf_keras",
    "tensorflow-model-optimization",
    "tf2onnx",
    "onnx",
    "onnxruntime",
    "ai-edge-litert",
)


class ConvertError(EdgeError):
    """A conversion step failed at run time (exit 1)."""


class GateFailed(ConvertError):
    """The validation gate rejected the converted models (exit 1); nothing was shipped."""


def save_keras_atomic(model, path: str | os.PathLike) -> Path:
    """model.save to a temp name with the same suffix (Keras picks the format by suffix)."""
    with atomic_path(path) as tmp:
        model.save(tmp)
    return Path(path)


def gzip_size(path: str | os.PathLike) -> int:
    """Bytes of the file gzipped: sparsity shows up here, not in the raw size."""
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=GZIP_LEVEL))


def file_sizes(path: str | os.PathLike) -> dict[str, int]:
    return {"bytes": Path(path).stat().st_size, "gzip_bytes": gzip_size(path)}


def converter_versions() -> dict[str, str]:
    versions = {}
    for name in CONVERTER_PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _owner_pid(name: str, mark: str) -> int | None:
    """The pid in .OUT.tmp-PID-XXXX (None for names without one: older versions)."""
    head = name.split(mark, 1)[1].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def remove_stale_staging(final: str | os.PathLike) -> list[Path]:
    """Staging (and replaced) folders of killed runs next to ``final``: those whose process
    is gone. A conversion running right now into the same --out keeps its folder."""
    final = Path(final)
    removed = []
    if not final.parent.is_dir():
        return removed
    for mark in (STAGE_MARK, OLD_MARK):
        for p in final.parent.glob(f".{final.name}{mark}*"):
            pid = _owner_pid(p.name, mark)
            if p.is_dir() and (pid is None or not _pid_alive(pid)):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed


def staging_dir(final: str | os.PathLike) -> Path:
    """A fresh temp folder next to ``final`` (same file system, so the rename is atomic),
    named with this process's id so a later run can tell a killed run's folder."""
    final = Path(final)
    parent = check_writable_dir(final.parent, "--out")
    return Path(tempfile.mkdtemp(dir=parent, prefix=f".{final.name}{STAGE_MARK}{os.getpid()}-"))


def make_readable(folder: Path) -> None:
    """Temp files and folders are created private (0600/0700); published results get the
    modes open() and mkdir() would give under the user's umask."""
    dir_mode, file_mode = DIR_MODE & ~umask(), default_file_mode()
    os.chmod(folder, dir_mode)
    for path in folder.rglob("*"):
        os.chmod(path, dir_mode if path.is_dir() else file_mode)


def publish_dir(stage: Path, final: str | os.PathLike) -> Path:
    """Move a finished staging folder into place; a previous ``final`` is replaced whole."""
    final = Path(final)
    make_readable(stage)
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(dir=final.parent,
                                    prefix=f".{final.name}{OLD_MARK}{os.getpid()}-"))
        os.replace(final, old / "previous")
    os.replace(stage, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final
