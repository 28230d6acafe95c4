"""Optional packages and noisy native libraries, for library code and the CLIs alike.

``require(module)`` imports an optional package or raises ``MissingExtra`` (a
UserInputError, exit 2) whose one line names the install command that works from this
repository; ``native_stderr_without`` filters what native code writes to fd 2. These lived
in edge.clikit; they are here so library code never imports the CLI layer.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence

from edge.errors import UserInputError

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
    "pycocotools": ("label", "COCO files and Label Studio polygons"),
}


class MissingExtra(UserInputError):
    """An optional package is not installed (exit 2): the message names the install command.
    Its own class so loops that report a failed model and go on can tell "this whole run
    cannot work here" apart and stop."""


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
        raise MissingExtra(missing_extra_message(module)) from e


def quiet_tensorflow(verbose: bool = False) -> None:
    """Hide TensorFlow's start-up noise (cuInit, oneDNN, CPU feature lines) unless verbose.
    Call before tensorflow is imported."""
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # no GPU probing on a CPU-only machine
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


# Start-up lines TensorFlow's C++ side writes straight to fd 2 on import, whatever
# TF_CPP_MIN_LOG_LEVEL says (absl logs before its own initialisation, CUDA probing).
TF_IMPORT_NOISE = (
    "absl::InitializeLog()", "cudart_stub.cc", "Could not find cuda drivers", "cuInit",
    "oneDNN custom operations", "This TensorFlow binary is optimized", "TF-TRT Warning",
    "Unable to register cu", "rebuild TensorFlow with the appropriate compiler flags",
)


@contextlib.contextmanager
def native_stderr_without(noise: Sequence[str]) -> Iterator[None]:
    """Capture what native code writes to fd 2 meanwhile and pass on only the lines that
    contain none of ``noise`` (libraries with no switch for their start-up chatter)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = [ln for ln in text.splitlines() if not any(n in ln for n in noise)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


def tensorflow_is_quiet() -> bool:
    """True when quiet_tensorflow() has been called without --verbose."""
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "3"
