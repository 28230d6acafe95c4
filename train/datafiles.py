"""Reading the data's files: frames, nerve masks (binary 0/255, class ids, palette PNGs) and
Kaggle RLE tables, with the typed error every data problem raises. NumPy + OpenCV only.
train/datasets.py finds, splits and loads them; train/prepare.py converts downloads.
"""

from __future__ import annotations

import csv
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.errors import UserInputError

LOSSY_EXTS = (".jpg", ".jpeg")  # masks saved lossy: threshold instead of checking values
MAX_CLASS_ID = 15  # folder masks: ids above this (and not the nerve class) mean colors, not ids
KAGGLE_FRAME_HW = (420, 580)  # original Kaggle frame (rows, cols): the RLE coordinate system


class DataError(UserInputError):
    """The training/evaluation data cannot be used as given (CLI exit 2)."""


@dataclass(frozen=True)
class Sample:
    """One frame and its mask. mask_path None = no mask (inference only)."""

    image_path: str
    mask_path: str | None
    subject: str
    stem: str


def read_image(path) -> np.ndarray:
    """A frame as stored (8 or 16 bit; gray or color). DataError when unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise DataError(f"cannot read image {path}; re-export it as PNG/TIFF or remove it")
    return img


def _png_palette(path) -> np.ndarray | None:
    """The PLTE chunk of a palette PNG as (K, 3) RGB, or None. Parsed by hand so the
    index image can be recovered without Pillow."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    pos, color_type = 8, None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            color_type = body[9]
        elif kind == b"PLTE" and color_type == 3:
            return np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif kind in (b"IDAT", b"IEND"):
            return None
        pos += 12 + length
    return None


def read_class_ids(path) -> np.ndarray:
    """A class-id mask (HxW ints). Palette PNGs give their indices, not their colors."""
    palette = _png_palette(path) if str(path).lower().endswith(".png") else None
    if palette is not None:
        try:
            from PIL import Image  # exact indices when Pillow is there

            with Image.open(path) as im:
                return np.array(im)
        except ImportError:
            return _colors_to_ids(read_image(path), palette, path)
    ids = read_image(path)
    if ids.ndim == 3:
        if not (np.all(ids[..., 0] == ids[..., 1]) and np.all(ids[..., 1] == ids[..., 2])):
            raise DataError(
                f"mask {path} is a color image, not class ids; save masks as single-channel "
                f"(or palette) PNGs whose values are class ids"
            )
        ids = ids[..., 0]
    return ids


def _colors_to_ids(bgr: np.ndarray, palette: np.ndarray, path) -> np.ndarray:
    rgb = bgr[..., ::-1] if bgr.ndim == 3 else np.repeat(bgr[..., None], 3, axis=2)
    ids = np.full(rgb.shape[:2], -1, np.int32)
    for idx in range(len(palette) - 1, -1, -1):  # first palette entry wins on duplicates
        ids[np.all(rgb[..., :3] == palette[idx], axis=2)] = idx
    if (ids < 0).any():
        raise DataError(f"mask {path} has colors outside its palette; re-save it")
    return ids


def read_mask(sample: Sample, nerve_class: int = 1) -> np.ndarray:
    """uint8 0/1 nerve mask at frame size. Kaggle: binary 0/255 (or 0/1) masks; folder: class
    ids with nerve_class as the nerve. DataError on values that fit neither."""
    if sample.mask_path is None:
        raise DataError(f"image {sample.image_path} has no mask")
    path = sample.mask_path
    if Path(path).stem == Path(sample.image_path).stem:  # folder layout: same stem, class ids
        ids = read_class_ids(path)
        _check_class_ids(ids, nerve_class, path)
        return (ids == nerve_class).astype(np.uint8)
    raw = read_image(path)
    if raw.ndim == 3:
        raw = raw.max(axis=2)
    if path.lower().endswith(LOSSY_EXTS):
        return (raw >= np.iinfo(raw.dtype).max // 2 + 1).astype(np.uint8)
    _check_binary(raw, path)
    return (raw > 0).astype(np.uint8)


def read_class_masks(sample: Sample, ids: tuple[int, ...]) -> np.ndarray:
    """(H, W, C) uint8 0/1 at frame size, channel k = pixels of class ids[k] (folder layout:
    class-id masks). DataError on masks that are not class ids."""
    if sample.mask_path is None or Path(sample.mask_path).stem != Path(sample.image_path).stem:
        raise DataError(f"--classes needs folder-layout class-id masks (images/ + masks/); "
                        f"{sample.image_path} has none")
    mask_ids = read_class_ids(sample.mask_path)
    _check_class_ids(mask_ids, ids[0], sample.mask_path)
    return np.stack([(mask_ids == i) for i in ids], axis=-1).astype(np.uint8)


def _check_binary(raw: np.ndarray, path) -> None:
    allowed = {0, 1, int(np.iinfo(raw.dtype).max) if raw.dtype.kind in "ui" else 1}
    values = set(np.unique(raw).tolist())
    if not values <= allowed:
        raise DataError(
            f"mask {path} has values {sorted(values)[:6]}; kaggle-layout masks must be 0/255 "
            f"(binary). For class-id masks use --layout folder with images/ and masks/"
        )


def _check_class_ids(ids: np.ndarray, nerve_class: int, path) -> None:
    values = set(np.unique(ids).tolist())
    bad = sorted(v for v in values if (v < 0 or v > MAX_CLASS_ID) and v != nerve_class)
    if bad:
        raise DataError(
            f"mask {path} has values {bad[:6]} outside the class ids 0..{MAX_CLASS_ID} "
            f"(--nerve-class {nerve_class}); masks must hold class ids, not colors: re-save them "
            f"as single-channel or palette PNGs, or pass the right --nerve-class"
        )


# ---------------------------------------------------------------- Kaggle RLE


def rle_decode(rle: str, hw: tuple[int, int] = KAGGLE_FRAME_HW) -> np.ndarray:
    """Inverse of rle_encode: uint8 0/1 mask of shape hw."""
    h, w = hw
    flat = np.zeros(h * w, np.uint8)
    nums = [int(v) for v in str(rle or "").split()]
    if len(nums) % 2:
        raise DataError(f"RLE has {len(nums)} values, not start/length pairs")
    for start, length in zip(nums[0::2], nums[1::2], strict=True):
        if start < 1 or start - 1 + length > h * w:
            raise DataError(f"RLE run {start} {length} falls outside a {h}x{w} mask")
        flat[start - 1 : start - 1 + length] = 1
    return flat.reshape((w, h)).T.copy()


def read_rle_csv(path) -> list[dict[str, str]]:
    """Rows of a Kaggle RLE CSV (train_masks.csv: subject,img,pixels; submissions: img,pixels)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"RLE file {p} does not exist")
    with open(p, newline="", encoding="utf-8") as f:
        return [dict(r) for r in csv.DictReader(f)]
