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
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path

import train  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow loads)
from edge.errors import EdgeError
from edge.fsutil import DIR_MODE, atomic_path, check_writable_dir, default_file_mode, umask
from edge.signals import Terminated

GZIP_LEVEL = 9  # what a release archive would use: the size a download really costs
STAGE_MARK = ".tmp-"  # staging folder: .OUT.tmp-PID-XXXX next to OUT
OLD_MARK = ".old-"  # a replaced OUT on its way out: .OUT.old-PID-XXXX
PID_REUSE_SLACK_S = 2.0  # a process started this long after a folder's last change is not
# the run that wrote it (its pid was reused); the slack covers /proc's whole-second boot time
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")  # held back while a staging folder is made/removed
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


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), from /proc; None where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _owner_pid(name: str, mark: str) -> int | None:
    """The pid in .OUT.tmp-PID-XXXX (None for names without one: older versions)."""
    head = name.split(mark, 1)[1].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _owner_running(folder: Path, pid: int | None) -> bool:
    """Is the run that made ``folder`` still running? Not when its pid is gone, is this very
    process (which has made no staging folder yet when it cleans up), or belongs to a process
    that started after the folder last changed (the pid was reused: containers and fresh
    sandboxes hand out the same small pids again)."""
    if pid is None or pid == os.getpid() or not _pid_alive(pid):
        return False
    started = _process_start(pid)
    return started is None or started <= folder.stat().st_mtime + PID_REUSE_SLACK_S


def remove_stale_staging(final: str | os.PathLike) -> list[Path]:
    """Staging (and replaced) folders of killed runs next to ``final``: those whose process
    is gone (or is a later one under a reused pid). A conversion running right now into the
    same --out keeps its folder."""
    final = Path(final)
    removed = []
    if not final.parent.is_dir():
        return removed
    for mark in (STAGE_MARK, OLD_MARK):
        for p in final.parent.glob(f".{final.name}{mark}*"):
            ours = p.is_dir() and not p.is_symlink()
            if ours and not _owner_running(p, _owner_pid(p.name, mark)):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block is done, then act as usual: a signal
    can neither land between making a staging folder and remembering it, nor cut its removal
    short. Main thread only (elsewhere signals never reach Python code)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    signums = [getattr(signal, n) for n in STOP_SIGNALS if hasattr(signal, n)]
    old = {s: signal.signal(s, lambda signum, frame: got.append(signum)) for s in signums}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if got:
            handler = old[got[0]]
            if callable(handler):
                handler(got[0], None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), got[0])


def _on_hangup(signum, frame):  # noqa: ARG001
    raise Terminated()


@contextmanager
def staging(final: str | os.PathLike) -> Iterator[Path]:
    """A staging folder next to ``final`` that is gone when the block ends, however it ends:
    published (renamed to ``final`` inside the block), an error, Ctrl-C or SIGTERM, or SIGHUP
    (a closed terminal; stops the run like SIGTERM while the folder exists, unless ignored as
    under nohup). Only SIGKILL leaves it, for the next run's remove_stale_staging."""
    hangup = getattr(signal, "SIGHUP", None)
    main = threading.current_thread() is threading.main_thread()
    catch_hup = bool(hangup) and main and signal.getsignal(hangup) == signal.SIG_DFL
    if catch_hup:
        signal.signal(hangup, _on_hangup)
    stage = None
    try:
        with _signals_deferred():
            stage = staging_dir(final)
        yield stage
    finally:
        try:
            with _signals_deferred():
                if stage is not None:
                    shutil.rmtree(stage, ignore_errors=True)
        finally:
            if catch_hup:
                signal.signal(hangup, signal.SIG_DFL)


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
