"""Frame folders in and labelled folders out: the reading and atomic writing every label
command shares. A labelled folder is what edge-train's folder layout reads: ``images/NAME.png``
+ ``masks/NAME.png`` (uint8 class ids, 0 = background; an empty mask is a frame with no nerve).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edge.errors import OutputError, UserInputError
from edge.fsutil import DIR_MODE, umask
from edge.io.files import list_images


class LabelError(UserInputError):
    """Bad input to a label command: one line naming the input and the fix, exit 2."""


def frame_paths(folder: str | os.PathLike, what: str = "--frames") -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise LabelError(f"{what} {folder}: no such folder; give the folder of frames "
                         f"(e.g. the one edge-run --capture wrote)")
    paths = list_images(folder)
    if not paths:
        raise LabelError(f"{what} {folder}: no .png/.tif/.jpg/.bmp frames in it")
    return paths


def read_frame(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise LabelError(f"cannot read image {path}: not an image OpenCV decodes; "
                         f"remove or replace it")
    return image


def write_png(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise OutputError(f"cannot encode {path} as PNG")
    path.write_bytes(data.tobytes())


@contextlib.contextmanager
def staged_folder(out: str | os.PathLike, what: str = "--out") -> Iterator[Path]:
    """A hidden temp folder beside ``out``, renamed onto it when the block ends without error
    (removed otherwise): a failed or interrupted command leaves no half-written folder. ``out``
    must be absent or empty (an earlier result is never mixed with a new one)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"{what} {out} exists and is not an empty folder; give a new "
                          f"folder or remove it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    except OSError as e:
        raise OutputError(f"{what} {out}: cannot write there ({e.strerror or e}); "
                          f"choose a writable folder") from e
    try:
        yield tmp
        os.chmod(tmp, DIR_MODE & ~umask())  # mkdtemp makes 0700
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_labelled(out: Path, name: str, image: np.ndarray, mask: np.ndarray) -> None:
    """images/NAME.png (as read, lossless) + masks/NAME.png (class ids) under ``out``."""
    for sub in ("images", "masks"):
        (out / sub).mkdir(exist_ok=True)
    write_png(out / "images" / f"{name}.png", image)
    write_png(out / "masks" / f"{name}.png", mask.astype(np.uint8))


def safe_name(file_name: str) -> str:
    """An image name with folders ("scan1/a.png") -> a flat stem ("scan1__a")."""
    stem = str(Path(file_name.replace("\\", "/")).with_suffix(""))
    return stem.strip("/").replace("/", "__")
