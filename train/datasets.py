"""Finding, checking, splitting and loading ultrasound frames with their nerve masks (the
files themselves are read by train/datafiles.py).

NumPy + OpenCV only (no TensorFlow): benchmarks and the converter use this module too.

Two layouts:

- ``kaggle``: one folder of ``SUBJECT_IMAGE.<ext>`` with ``SUBJECT_IMAGE_mask.<ext>`` (binary
  0/255 masks; tif/png/jpg; 8 or 16 bit). The subject is the number before the underscore.
- ``folder``: ``images/`` + ``masks/`` with matching stems; masks hold class ids (0 =
  background) and ``nerve_class`` picks the nerve. Subjects come from an optional CSV
  (``stem,subject``), else every image is its own subject.

Frames and masks go through ``edge.model.preprocess`` (the one pre-processing implementation).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import time
from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np

from edge.fsutil import atomic_path
from edge.log import note
from edge.model.evaluate import LabelledFrames
from edge.model.preprocess import PreprocessConfig, frame_to_gray_input, mask_to_input
from train.datafiles import DataError, Sample, read_class_masks, read_image, read_mask

IMAGE_EXTS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
MASK_SUFFIX = "_mask"
LAYOUTS = ("kaggle", "folder")
LIST_LIMIT = 3  # file names quoted in an error message
PROGRESS_EVERY = 500  # frames between progress lines while loading
CACHE_VERSION = 2  # bump when the cached arrays change (format, or the resizes: 2 = exact resizes)
PORTABLE_PARTS = 2  # an absolute data path is recorded by its last parts only


# ---------------------------------------------------------------- discovery


def portable_path(path: str | os.PathLike | None) -> str | None:
    """A path fit for a file that leaves this machine: relative paths as given, absolute ones
    by their last PORTABLE_PARTS parts (e.g. kaggle-nerve/train), never the build machine's
    layout."""
    if path is None:
        return None
    p = Path(path)
    return p.as_posix() if not p.is_absolute() else Path(*p.parts[-PORTABLE_PARTS:]).as_posix()


def _names(paths, limit=LIST_LIMIT) -> str:
    names = [os.path.basename(str(p)) for p in paths]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def detect_layout(data_dir) -> str:
    """'folder' when images/ and masks/ exist, 'kaggle' when *_mask files exist."""
    d = Path(data_dir)
    _check_dir(d)
    if (d / "images").is_dir() and (d / "masks").is_dir():
        return "folder"
    if any(p.stem.endswith(MASK_SUFFIX) for p in _image_files(d)):
        return "kaggle"
    raise DataError(
        f"cannot tell the layout of {d}: expected images/ + masks/ (folder layout) or "
        f"SUBJECT_IMAGE.png + SUBJECT_IMAGE_mask.png files (kaggle layout); pass --layout"
    )


def _check_dir(d: Path) -> None:
    if not d.is_dir():
        raise DataError(f"data folder {d} does not exist; pass --data with the folder of frames")


def kaggle_subject(stem: str) -> str:
    """Kaggle names are SUBJECT_IMAGE: the subject is the part before the first underscore."""
    return stem.split("_", 1)[0]


def _find_kaggle(d: Path) -> list[Sample]:
    files = _image_files(d)
    masks = {p.stem[: -len(MASK_SUFFIX)]: p for p in files if p.stem.endswith(MASK_SUFFIX)}
    images = {p.stem: p for p in files if not p.stem.endswith(MASK_SUFFIX)}
    _check_pairs(d, images, masks, "NAME_mask" + ".png next to each NAME.png")
    return [Sample(str(images[s]), str(masks[s]), kaggle_subject(s), s) for s in sorted(images)]


def _find_folder(d: Path, subjects_csv) -> list[Sample]:
    images = {p.stem: p for p in _image_files(d / "images")}
    masks = {p.stem: p for p in _image_files(d / "masks")}
    _check_pairs(d, images, masks, "masks/NAME.png for each images/NAME.png")
    subjects = read_subjects_csv(subjects_csv) if subjects_csv else {}
    missing = [s for s in images if subjects and s not in subjects]
    if missing:
        raise DataError(
            f"{subjects_csv} gives no subject for {len(missing)} image(s) "
            f"({_names(missing)}); add a 'stem,subject' row for each"
        )
    return [
        Sample(str(images[s]), str(masks[s]), subjects.get(s, s), s) for s in sorted(images)
    ]


def _check_pairs(d: Path, images: dict, masks: dict, expected: str) -> None:
    if not images and not masks:
        raise DataError(f"no images found in {d} (extensions {', '.join(IMAGE_EXTS)})")
    lonely_images = sorted(set(images) - set(masks))
    lonely_masks = sorted(set(masks) - set(images))
    if lonely_images:
        raise DataError(
            f"{len(lonely_images)} image(s) in {d} have no mask ({_names(lonely_images)}); "
            f"expected {expected}: add the masks or move those images out"
        )
    if lonely_masks:
        raise DataError(
            f"{len(lonely_masks)} mask(s) in {d} have no image ({_names(lonely_masks)}); "
            f"add the images or move those masks out"
        )


def read_subjects_csv(path) -> dict[str, str]:
    """CSV of stem,subject (a header row is optional)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"--subjects-csv {p} does not exist; give a CSV of stem,subject rows")
    out: dict[str, str] = {}
    with open(p, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if len(row) < 2 or row[0].strip().lower() in ("stem", "image", "name"):
                continue
            out[Path(row[0].strip()).stem] = row[1].strip()
    if not out:
        raise DataError(f"--subjects-csv {p} has no stem,subject rows")
    return out


def find_samples(data_dir, layout=None, nerve_class=1, subjects_csv=None) -> list[Sample]:
    """All (image, mask) pairs under data_dir, sorted by stem. nerve_class is checked when the
    masks are read (read_mask); it is accepted here so callers pass one set of arguments."""
    d = Path(data_dir)
    _check_dir(d)
    layout = layout or detect_layout(d)
    if layout not in LAYOUTS:
        raise DataError(f"--layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    if layout == "kaggle":
        if subjects_csv:
            raise DataError("--subjects-csv is for the folder layout; kaggle names hold subjects")
        return _find_kaggle(d)
    if not (d / "images").is_dir() or not (d / "masks").is_dir():
        raise DataError(f"folder layout needs {d}/images and {d}/masks; check --data/--layout")
    return _find_folder(d, subjects_csv)


# ---------------------------------------------------------------- split


def split_by_subject(samples, val_fraction=0.2, seed=0):
    """(train, val) with no subject on both sides. Subjects are shuffled with ``seed`` and
    taken for validation until at least val_fraction of the frames are covered."""
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"--val-fraction {val_fraction} must be between 0 and 1 (e.g. 0.2)")
    subjects = sorted({s.subject for s in samples})
    if len(subjects) < 2:
        raise DataError(
            f"the split needs at least 2 subjects, found {len(subjects)} "
            f"({_names(subjects)}); add data from more subjects or pass --subjects-csv"
        )
    random.Random(seed).shuffle(subjects)
    counts = {s: 0 for s in subjects}
    for s in samples:
        counts[s.subject] += 1
    target = val_fraction * len(samples)
    val_subjects: set[str] = set()
    covered = 0
    for subj in subjects[:-1]:  # keep at least one subject for training
        if covered >= target:
            break
        val_subjects.add(subj)
        covered += counts[subj]
    if not val_subjects:
        raise DataError("the split left no validation subject; raise --val-fraction")
    train = [s for s in samples if s.subject not in val_subjects]
    val = [s for s in samples if s.subject in val_subjects]
    return train, val


def split_fold(samples, folds: int, fold: int, seed=0):
    """(train, held-out) for K-fold cross-validation by subject: subjects are shuffled with
    ``seed`` and dealt to ``folds`` folds in turn; fold ``fold`` (0-based) is held out. Without
    a subjects CSV every image is its own subject (folds by image). folds == 1: train on every
    frame; the "held-out" set is then the training set itself (logged figures only)."""
    if folds == 1:
        return list(samples), list(samples)
    if folds < 1 or not 0 <= fold < folds:
        raise DataError(f"--fold {fold} must be in 0..{folds - 1} and --folds at least 1")
    subjects = sorted({s.subject for s in samples})
    if len(subjects) < folds:
        raise DataError(f"{folds} folds need at least {folds} subjects, found {len(subjects)}")
    random.Random(seed).shuffle(subjects)
    held = set(subjects[fold::folds])
    return ([s for s in samples if s.subject not in held],
            [s for s in samples if s.subject in held])


def draw_frames(samples, n: int | None, seed=0):
    """``n`` of the training frames, drawn with ``seed`` (in their original order): what a
    clinic that labels only n frames would train on (a learning curve). None: all of them."""
    if n is None or n == len(samples):
        return list(samples)
    if n > len(samples):
        raise DataError(f"--train-frames {n}: the training part has only {len(samples)} "
                        f"frames; pass at most {len(samples)} (or drop the flag)")
    keep = set(random.Random(seed).sample(range(len(samples)), n))
    return [s for i, s in enumerate(samples) if i in keep]


def subjects_of(samples) -> list[str]:
    """Sorted subject ids (numeric ones in numeric order)."""
    return sorted({s.subject for s in samples}, key=lambda v: (not v.isdigit(), len(v), v))




# ---------------------------------------------------------------- arrays + cache


def _cache_key(samples, pre_cfg: PreprocessConfig, nerve_class: int, resize: bool,
               class_ids=None) -> str:
    h = hashlib.sha256()
    key = [CACHE_VERSION, asdict(pre_cfg), nerve_class, resize]
    h.update(json.dumps(key + [list(class_ids)] if class_ids else key,
                        default=str).encode())
    for s in samples:
        for p in (s.image_path, s.mask_path):
            st = os.stat(p) if p else None
            h.update(f"{p}|{st.st_size if st else 0}|{st.st_mtime_ns if st else 0}".encode())
    return h.hexdigest()[:24]


def _progress(done: int, total: int, t0: float) -> None:
    if done % PROGRESS_EVERY == 0 or done == total:
        note(f"loading frames: {done}/{total} ({time.time() - t0:.1f} s)")


def check_mask_size(mask: np.ndarray, image: np.ndarray, sample: Sample,
                    resize: bool = False) -> np.ndarray:
    """A mask must have its image's size: a mismatch means a wrong pairing or a bad export,
    and training on it would teach the wrong pixels. Refused unless ``resize`` (then resized
    with nearest neighbour, class ids intact)."""
    ih, iw = image.shape[:2]
    if mask.shape[:2] == (ih, iw):
        return mask
    if not resize:
        mh, mw = mask.shape[:2]
        image_name = os.path.basename(sample.image_path)
        raise DataError(
            f"mask {sample.mask_path} is {mw}x{mh} but its image {image_name} is {iw}x{ih}; "
            "fix the mask, or pass --resize-masks to resize every such mask to its image")
    return cv2.resize(mask, (iw, ih), interpolation=cv2.INTER_NEAREST)


def _mask_input(s: Sample, image, pre_cfg, nerve_class, resize_masks, class_ids):
    """One label at the model input: (H, W) nerve mask, or (H, W, C) with class_ids."""
    if class_ids is None:
        mask = check_mask_size(read_mask(s, nerve_class), image, s, resize_masks)
        return mask_to_input(mask, pre_cfg)
    masks = check_mask_size(read_class_masks(s, class_ids), image, s, resize_masks)
    masks = masks.reshape(*masks.shape[:2], -1)  # cv2.resize drops a single channel axis
    return np.stack([mask_to_input(masks[..., k], pre_cfg) for k in range(len(class_ids))],
                    axis=-1)


def load_arrays(samples, pre_cfg: PreprocessConfig, nerve_class: int = 1, cache_dir=None,
                resize_masks: bool = False, class_ids: tuple[int, ...] | None = None):
    """(X uint8 N,H,W; Y uint8 N,H,W 0/1) at the model input size, through edge.model.preprocess.
    With class_ids (folder layout): Y is (N, H, W, C), channel k = class class_ids[k].
    Samples without masks get empty Y. A mask of another size than its image is a DataError
    unless resize_masks. With cache_dir, arrays are kept in an .npz keyed by the file list
    (paths, sizes, mtimes) and the pre-processing config."""
    if not samples:
        raise DataError("no frames to load (empty sample list); check --data and --subjects")
    cache = None
    if cache_dir:
        key = _cache_key(samples, pre_cfg, nerve_class, resize_masks, class_ids)
        cache = Path(cache_dir) / f"arrays-{key}.npz"
        if cache.is_file():
            with np.load(cache) as z:
                return z["x"], z["y"]
    h, w = pre_cfg.input_hw
    x = np.zeros((len(samples), h, w), np.uint8)
    y = np.zeros((len(samples), h, w, *([len(class_ids)] if class_ids else [])), np.uint8)
    t0 = time.time()
    for i, s in enumerate(samples):
        image = read_image(s.image_path)
        x[i] = frame_to_gray_input(image, pre_cfg)
        if s.mask_path is not None:
            y[i] = _mask_input(s, image, pre_cfg, nerve_class, resize_masks, class_ids)
        _progress(i + 1, len(samples), t0)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache) as tmp:
            np.savez(tmp, x=x, y=y)
    return x, y


def load_labelled(samples, pre_cfg: PreprocessConfig, nerve_class: int = 1, cache_dir=None,
                  resize_masks: bool = False, class_ids: tuple[int, ...] | None = None
                  ) -> LabelledFrames:
    """load_arrays as the evaluator's LabelledFrames (gray geometry: channels do not matter);
    with class_ids the labels are (N, H, W, C)."""
    geometry = replace(pre_cfg, channels=1)
    x, y = load_arrays(samples, geometry, nerve_class, cache_dir, resize_masks, class_ids)
    return LabelledFrames(x, y, tuple(s.stem for s in samples))


def check_has_nerve(y: np.ndarray, what: str, nerve_class: int) -> None:
    """Refuse to train when no mask holds the nerve class (wrong --nerve-class, wrong data)."""
    if y.size and not y.any():
        raise DataError(
            f"no {what} mask contains the nerve (class {nerve_class}); check --nerve-class "
            f"and --layout (kaggle masks are 0/255, folder masks are class ids)"
        )
