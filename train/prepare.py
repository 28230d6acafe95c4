"""edge-train prepare: turn the public downloads into the two layouts the kit reads.

- ``kaggle``: the Kaggle "Ultrasound Nerve Segmentation" training download (``train/S_I.tif``
  580 x 420 + ``train/S_I_mask.tif``, ``train_masks.csv``) -> ``OUT/train/S_I.png`` +
  ``S_I_mask.png`` at ``--width`` (default 256 x 185), ``OUT/train_masks.csv``. Images and
  masks are resized by area (a box filter); a mask pixel is nerve when at least half of its
  area was (0/255 PNGs). Masks come from the ``_mask.tif`` files, or from
  the RLE file where a mask file is missing (or with ``--masks rle``).
- ``usgra``: a clone of the public tmkand/usgra-seg repository (``dataset/images`` +
  ``dataset/masks``, palette PNGs of class ids, CC-BY 4.0) -> ``OUT/images`` + ``OUT/masks``
  (+ the dataset's LICENSE), every pair checked first.

numpy + OpenCV only (no TensorFlow): it runs in the device environment too. The output is
built in a hidden folder next to OUT and renamed into place at the end, so an interrupted run
leaves no half-prepared data set. See docs/data.md.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.fsutil import write_json_atomic
from edge.log import note
from edge.model.preprocess import to_gray8
from train.datafiles import (
    KAGGLE_FRAME_HW,
    DataError,
    Sample,
    read_image,
    read_mask,
    read_rle_csv,
    rle_decode,
)
from train.datasets import MASK_SUFFIX, find_samples, kaggle_subject, subjects_of

DEFAULT_WIDTH = 256  # px; 580 x 420 -> 256 x 185, the frames the shipped model was trained on
MIN_WIDTH = 16  # px; below this nothing of a nerve is left
MASK_ON = 255  # nerve value in the prepared Kaggle masks (the kit reads 0/255)
MASK_AREA_MIN = 0.5  # a resized mask pixel is nerve when at least half of its area was
AREA_EPS = 1e-9  # float sums of exact halves must still count as half
RLE_CSV = "train_masks.csv"
MASK_SOURCES = ("auto", "tif", "rle")
SOURCE_EXTS = (".tif", ".tiff", ".png")  # the download is .tif; re-exports may be .png
USGRA_DATASET = "dataset"  # the repository keeps images/ + masks/ under dataset/
USGRA_TEST = "test"  # dataset/test/: the authors' 40 held-out pairs
PROGRESS_EVERY = 500  # frames between progress lines
RECORD = "prepare.json"  # what was prepared, with which settings

Say = Callable[[str], None]


def _say(line: str) -> None:
    note(line)


# ---------------------------------------------------------------- output staging


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"--out {out} already exists and is not empty; remove it or choose "
                        f"another folder (prepare never mixes two data sets)")


class Staging:
    """A hidden folder beside ``out`` that becomes ``out`` on ``commit()``; removed otherwise."""

    def __init__(self, out: Path):
        _check_out(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.path = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.prepare-"))

    def commit(self) -> Path:
        _check_out(self.out)
        if self.out.exists():
            self.out.rmdir()  # empty, checked above
        self.path.rename(self.out)
        return self.out

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _write_png(path: Path, img: np.ndarray) -> None:
    if not cv2.imwrite(str(path), img):
        raise DataError(f"cannot write {path}; check the free space and permissions of --out")


def _progress(say: Say, done: int, total: int, t0: float) -> None:
    if done % PROGRESS_EVERY == 0 or done == total:
        say(f"prepare: {done}/{total} frames ({time.time() - t0:.0f} s)")


# ---------------------------------------------------------------- kaggle


@dataclass(frozen=True)
class KaggleOptions:
    src: Path
    out: Path
    width: int = DEFAULT_WIDTH
    masks: str = "auto"  # auto: the _mask.tif files, RLE where one is missing
    jpeg_quality: int = 0  # 0 = off; else a JPEG round trip at this quality after resizing
    frames: Path | None = None  # a list of SUBJECT_IMAGE ids to keep (one per line)


def find_kaggle_download(src: Path) -> tuple[Path, Path | None]:
    """(train folder, train_masks.csv or None) of an unpacked Kaggle download (or its train/)."""
    if not src.is_dir():
        raise DataError(f"--src {src} does not exist; unzip the Kaggle download and pass its "
                        f"folder (the one holding train/ and {RLE_CSV})")
    train = src / "train" if (src / "train").is_dir() else src
    for csv_path in (src / RLE_CSV, train.parent / RLE_CSV, train / RLE_CSV):
        if csv_path.is_file():
            return train, csv_path
    return train, None


def _source_frames(train: Path) -> dict[str, Path]:
    """{SUBJECT_IMAGE: image path} for every frame file that is not a mask."""
    files = [p for p in sorted(train.iterdir()) if p.suffix.lower() in SOURCE_EXTS]
    return {p.stem: p for p in files if not p.stem.endswith(MASK_SUFFIX)}


def read_frame_list(path: Path) -> list[str]:
    """SUBJECT_IMAGE ids, one per line; blank lines and # comments ignored."""
    if not path.is_file():
        raise DataError(f"--frames {path} does not exist; give a text file of SUBJECT_IMAGE ids")
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    ids = [Path(line).stem for line in lines if line]
    if not ids:
        raise DataError(f"--frames {path} lists no frame ids (one SUBJECT_IMAGE per line)")
    return ids


def _select(frames: dict[str, Path], wanted: list[str] | None, train: Path) -> list[str]:
    if not frames:
        raise DataError(f"no .tif frames in {train}; pass the unzipped Kaggle download "
                        f"(train/1_1.tif, train/1_1_mask.tif, ...)")
    if wanted is None:
        return sorted(frames, key=_id_order)
    missing = [i for i in wanted if i not in frames]
    if missing:
        raise DataError(f"{len(missing)} frame(s) of --frames are not in {train} "
                        f"({', '.join(missing[:3])}); is it the full Kaggle training download?")
    return list(dict.fromkeys(wanted))


def _id_order(stem: str) -> tuple:
    parts = stem.split("_")
    return tuple(int(p) if p.isdigit() else 0 for p in parts) + (stem,)


def _rle_table(csv_path: Path | None) -> dict[str, str]:
    if csv_path is None:
        return {}
    rows = read_rle_csv(csv_path)
    if rows and not {"subject", "img", "pixels"} <= set(rows[0]):
        raise DataError(f"{csv_path} is not Kaggle's {RLE_CSV} (columns subject,img,pixels)")
    return {f"{r['subject']}_{r['img']}": r["pixels"] or "" for r in rows}


def kaggle_mask(stem: str, image: Path, rle: dict[str, str], masks: str) -> np.ndarray:
    """Full-size 0/1 nerve mask of one frame, from its mask file or the RLE row."""
    mask_file = image.with_name(f"{stem}{MASK_SUFFIX}{image.suffix}")
    if masks != "rle" and mask_file.is_file():
        raw = read_image(mask_file)
        return (raw.max(axis=2) if raw.ndim == 3 else raw) > 0
    if masks == "tif":
        raise DataError(f"mask {mask_file} is missing; pass --masks auto to use the RLE file")
    if stem not in rle:
        raise DataError(f"no mask for {stem}: neither {mask_file.name} nor a {RLE_CSV} row; "
                        f"put {RLE_CSV} next to train/")
    return rle_decode(rle[stem], KAGGLE_FRAME_HW) > 0


def target_size(frame_hw: tuple[int, int], width: int) -> tuple[int, int]:
    """(rows, cols) at ``width`` keeping the frame's aspect: 420 x 580 at 256 -> 185 x 256."""
    h, w = frame_hw
    if not MIN_WIDTH <= width <= w:
        raise DataError(f"--width {width} must be between {MIN_WIDTH} and the frame width {w}")
    return max(1, round(h * width / w)), width


def _box_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) averaging weights: each output pixel is the plain mean of the input pixels
    whose centres fall inside its footprint (Pillow's BOX filter; OpenCV's INTER_AREA weighs
    partial pixels instead, which moves a mask's >= 0.5 edge by a pixel here and there)."""
    scale = n_in / n_out
    centres = (np.arange(n_out) + 0.5) * scale
    rel = (np.arange(n_in)[None, :] + 0.5 - centres[:, None]) / scale
    w = ((rel > -0.5) & (rel <= 0.5)).astype(np.float64)
    return w / w.sum(axis=1, keepdims=True)


def box_resize(img: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Area (box-filter) resize of a 2-D array to hw, as float64."""
    rows = _box_weights(img.shape[0], hw[0])
    cols = _box_weights(img.shape[1], hw[1])
    return rows @ img.astype(np.float64) @ cols.T


def resize_frame(gray: np.ndarray, hw: tuple[int, int], jpeg_quality: int = 0) -> np.ndarray:
    """Box-filter resize; with jpeg_quality, a JPEG encode/decode round trip after it."""
    small = np.clip(np.floor(box_resize(gray, hw) + 0.5), 0, 255).astype(np.uint8)
    if not jpeg_quality:
        return small
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if ok else small


def resize_mask(mask: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """0/1 full-size -> 0/255 at hw: box filter, nerve where >= half the area was."""
    area = box_resize((np.asarray(mask) > 0).astype(np.float64), hw)
    return np.where(area >= MASK_AREA_MIN - AREA_EPS, MASK_ON, 0).astype(np.uint8)


def _prepare_kaggle_frame(stem, image, rle, opts, dest) -> bool:
    gray = to_gray8(read_image(image))
    mask = kaggle_mask(stem, image, rle, opts.masks)
    if mask.shape != gray.shape:
        raise DataError(f"mask of {stem} is {mask.shape[1]}x{mask.shape[0]} but the frame is "
                        f"{gray.shape[1]}x{gray.shape[0]}; re-download the frame and its mask")
    hw = target_size(gray.shape, opts.width)
    small_mask = resize_mask(mask, hw)
    _write_png(dest / f"{stem}.png", resize_frame(gray, hw, opts.jpeg_quality))
    _write_png(dest / f"{stem}{MASK_SUFFIX}.png", small_mask)
    return bool(small_mask.any())


def prepare_kaggle(opts: KaggleOptions, say: Say = _say) -> dict:
    """Write OUT/train (Kaggle layout, PNG) and OUT/train_masks.csv; returns the record."""
    if opts.masks not in MASK_SOURCES:
        raise DataError(f"--masks {opts.masks!r} is not one of {', '.join(MASK_SOURCES)}")
    if opts.jpeg_quality and not 1 <= opts.jpeg_quality <= 100:
        raise DataError(f"--jpeg-quality {opts.jpeg_quality} must be 1..100 (0 = off)")
    train, csv_path = find_kaggle_download(opts.src)
    frames = _source_frames(train)
    wanted = read_frame_list(opts.frames) if opts.frames else None
    ids = _select(frames, wanted, train)
    rle = _rle_table(csv_path)
    t0, with_nerve = time.time(), 0
    with Staging(opts.out) as stage:
        dest = stage.path / "train"
        dest.mkdir()
        for k, stem in enumerate(ids, 1):
            with_nerve += _prepare_kaggle_frame(stem, frames[stem], rle, opts, dest)
            _progress(say, k, len(ids), t0)
        if csv_path is not None:
            shutil.copyfile(csv_path, stage.path / RLE_CSV)
        record = _kaggle_record(opts, ids, with_nerve, csv_path)
        write_json_atomic(stage.path / RECORD, record)
        out = stage.commit()
    _check_readable(out / "train", "kaggle")
    say(f"prepare: {len(ids)} frames ({with_nerve} with a nerve) of "
        f"{len({kaggle_subject(i) for i in ids})} subjects -> {out / 'train'}")
    return record


def _kaggle_record(opts: KaggleOptions, ids, with_nerve: int, csv_path) -> dict:
    return {"dataset": "kaggle-nerve", "layout": "kaggle", "frames": len(ids),
            "frames_with_nerve": with_nerve,
            "subjects": len({kaggle_subject(i) for i in ids}), "width": opts.width,
            "masks": opts.masks, "jpeg_quality": opts.jpeg_quality,
            "frame_list": opts.frames.name if opts.frames else None,
            "rle_csv": csv_path is not None}


# ---------------------------------------------------------------- usgra


def find_usgra_pairs(src: Path, with_test: bool = False) -> list[tuple[Path, Path]]:
    """(image, mask) pairs of a usgra-seg clone (or its dataset/ folder), sorted by name."""
    if not src.is_dir():
        raise DataError(f"--src {src} does not exist; git clone the tmkand/usgra-seg "
                        f"repository and pass its folder")
    root = src / USGRA_DATASET if (src / USGRA_DATASET).is_dir() else src
    folders = [root] + ([root / USGRA_TEST] if with_test else [])
    pairs: list[tuple[Path, Path]] = []
    for folder in folders:
        if not (folder / "images").is_dir() or not (folder / "masks").is_dir():
            raise DataError(f"{folder} has no images/ + masks/; pass the usgra-seg clone")
        for sample in find_samples(folder, layout="folder"):
            pairs.append((Path(sample.image_path), Path(sample.mask_path)))
    names = [img.name for img, _ in pairs]
    if len(set(names)) != len(names):
        raise DataError(f"{root}: test/ and the main set share file names; prepare them apart")
    return sorted(pairs, key=lambda p: p[0].name)


def check_usgra_pair(image: Path, mask: Path, nerve_class: int) -> bool:
    """Readable, same size, class-id mask; True when the pair holds the nerve class."""
    gray = to_gray8(read_image(image))
    sample = Sample(str(image), str(mask), image.stem, image.stem)
    nerve = read_mask(sample, nerve_class)  # checks class ids (palette PNGs as indices)
    if nerve.shape != gray.shape:
        raise DataError(f"mask {mask} is {nerve.shape[1]}x{nerve.shape[0]} but its image is "
                        f"{gray.shape[1]}x{gray.shape[0]}; re-clone the repository")
    return bool(nerve.any())


def prepare_usgra(src: Path, out: Path, with_test: bool = False, nerve_class: int = 1,
                  say: Say = _say) -> dict:
    """Copy the checked pairs to OUT/images + OUT/masks (bytes unchanged) and the LICENSE."""
    pairs = find_usgra_pairs(src, with_test)
    t0, with_nerve = time.time(), 0
    with Staging(out) as stage:
        for sub in ("images", "masks"):
            (stage.path / sub).mkdir()
        for k, (image, mask) in enumerate(pairs, 1):
            with_nerve += check_usgra_pair(image, mask, nerve_class)
            shutil.copyfile(image, stage.path / "images" / image.name)
            shutil.copyfile(mask, stage.path / "masks" / mask.name)
            _progress(say, k, len(pairs), t0)
        _copy_license(src, stage.path, say)
        record = {"dataset": "usgra-seg", "layout": "folder", "frames": len(pairs),
                  "frames_with_nerve": with_nerve, "nerve_class": nerve_class,
                  "with_test": with_test, "license": "CC-BY 4.0 (tmkand/usgra-seg dataset/)"}
        write_json_atomic(stage.path / RECORD, record)
        out = stage.commit()
    _check_readable(out, "folder")
    say(f"prepare: {len(pairs)} pairs ({with_nerve} with a nerve) -> {out}")
    return record


def _copy_license(src: Path, dest: Path, say: Say) -> None:
    for cand in (src / USGRA_DATASET / "LICENSE", src / "LICENSE"):
        if cand.is_file():
            shutil.copyfile(cand, dest / "LICENSE")
            return
    say("prepare: warning: no dataset LICENSE found; usgra-seg is CC-BY 4.0, credit it")


def _check_readable(folder: Path, layout: str) -> None:
    """The result must be what edge-train reads: find it and its subjects again."""
    samples = find_samples(folder, layout=layout)
    if not samples or not subjects_of(samples):
        raise DataError(f"{folder}: prepared, but edge-train finds no frames in it")
