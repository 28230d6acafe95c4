"""Shared by every conversion step: typed errors, Keras model loading with clear errors,
atomic writes, file sizes and converter versions.

Library code raises; only convert/cli.py turns errors into exit codes (edge.errors: 2 = bad
input, 1 = runtime failure such as a failed gate).
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
from edge.errors import EdgeError, ModelError, OutputError

KERAS_SUFFIXES = (".keras", ".h5")
FILE_MODE, DIR_MODE = 0o644, 0o755  # before the umask
GZIP_LEVEL = 9  # what a release archive would use: the size a download really costs
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


def load_keras(path: str | os.PathLike):
    """A tf_keras model from a .keras/.h5 file, or ModelError naming the file and the fix."""
    import tf_keras as keras

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file; pass the model.keras written by edge-train")
    if path.suffix not in KERAS_SUFFIXES:
        raise ModelError(
            f"{path}: not a Keras model (suffix {path.suffix!r}); pass a .keras or .h5 file "
            "or an edge-train run folder"
        )
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file; one clear line here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{path}: cannot be read as a tf_keras model ({first[:160]}); "
            "pass the model.keras written by edge-train"
        ) from exc


def model_input(model) -> tuple[int, int, int]:
    """(H, W, C) of a single-input image model, or ModelError."""
    shape = model.input_shape
    if isinstance(shape, list) or len(shape) != 4 or None in shape[1:]:
        raise ModelError(
            f"model {model.name!r} has input shape {shape}; edge-convert needs one fixed-size "
            "image input (N, H, W, C)"
        )
    return int(shape[1]), int(shape[2]), int(shape[3])


def ensure_dir_writable(folder: str | os.PathLike) -> Path:
    """Create folder if needed and prove we can write there, or raise OutputError."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise OutputError(
            f"{folder}: cannot write there ({exc.strerror or exc}); choose a writable --out"
        ) from exc
    return folder


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write through a temp file in the same folder + rename: never half a model."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, FILE_MODE & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save_keras_atomic(model, path: str | os.PathLike) -> Path:
    """model.save to a temp name with the same suffix (Keras picks the format by suffix)."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


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


def staging_dir(final: str | os.PathLike) -> Path:
    """A fresh temp folder next to ``final`` (same file system, so the rename is atomic)."""
    final = Path(final)
    parent = ensure_dir_writable(final.parent)
    return Path(tempfile.mkdtemp(dir=parent, prefix=f".{final.name}.tmp-"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_readable(folder: Path) -> None:
    """Temp files and folders are created private (0600/0700); published results get the
    usual permissions (0644/0755 under the process umask)."""
    mask = _umask()
    os.chmod(folder, DIR_MODE & ~mask)
    for path in folder.rglob("*"):
        os.chmod(path, (DIR_MODE if path.is_dir() else FILE_MODE) & ~mask)


def publish_dir(stage: Path, final: str | os.PathLike) -> Path:
    """Move a finished staging folder into place; a previous ``final`` is replaced whole."""
    final = Path(final)
    make_readable(stage)
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.old-"))
        os.replace(final, old / "previous")
    os.replace(stage, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final
