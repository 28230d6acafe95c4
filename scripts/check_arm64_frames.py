"""The frames `make check-arm64` compares the two machines on: phantom frames always; with a
data folder (docs/data.md; $NERVE_EDGE_DATA or --data), real Kaggle frames, and USGRA images
for the models trained on them. Staged in the root's work folder, which both sides read, and
removed after the check (frames cut from the data never stay).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import check_arm64_root as board

REPO = Path(__file__).resolve().parents[1]
MODELS_DIR = "edge/models"
DEFAULT_DATA = REPO / "data"  # the layout of docs/data.md; $NERVE_EDGE_DATA overrides it
FRAME_COUNT = 30  # per frame set: phantom always, real frames with a data folder
PHANTOM_SET = "phantom-frames"  # phantom frames as images: every model is compared on them
KAGGLE_FRAMES, USGRA_FRAMES = "frames", "frames-usgra"  # staged in the root's work folder


def data_dir(args: argparse.Namespace) -> Path:
    if args.data is not None:
        return args.data
    return Path(os.environ.get("NERVE_EDGE_DATA", DEFAULT_DATA))


def pick_frames(train_dir: Path, count: int) -> list[Path]:
    """``count`` ultrasound frames (not masks), evenly spaced over the sorted names."""
    images = sorted(p for p in train_dir.glob("*.png") if not p.stem.endswith("_mask"))
    if len(images) < count:
        raise FileNotFoundError(f"{train_dir}: {len(images)} frames, need {count}")
    step = len(images) // count
    return images[::step][:count]


def frames_folder(model: str, frame_set: str = "real") -> str:
    """The staged frames a model is compared on: the phantom set, or the real frames of the
    data it was trained on (a USGRA model on Kaggle frames outputs small spurious blobs)."""
    if frame_set == PHANTOM_SET:
        return PHANTOM_SET
    sidecar = REPO / MODELS_DIR / f"{Path(model).stem}.json"
    try:
        data = json.loads(sidecar.read_text())["extra"]["training_data"]["data_dir"]
    except (OSError, ValueError, KeyError, TypeError):
        data = ""
    return USGRA_FRAMES if "usgra" in str(data) else KAGGLE_FRAMES


def stage_frames(work_host: Path, args: argparse.Namespace) -> tuple[list[str], dict]:
    """Frames in the root's work folder (both sides read that copy): phantom frames always;
    with a data folder, Kaggle frames, and USGRA images for the models trained on them.
    Returns the frame sets and what each holds."""
    write_phantom_frames(work_host / PHANTOM_SET, args.frames)
    notes = {PHANTOM_SET: f"{args.frames} phantom frames (edge.io.phantom, seed 0)"}
    train = data_dir(args) / "kaggle-nerve" / "train"
    if not train.is_dir():
        board.say(f"no real frames at {train} (set NERVE_EDGE_DATA or --data, see "
                  f"docs/data.md): comparing on {args.frames} phantom frames only")
        return [PHANTOM_SET], notes
    kaggle, usgra = work_host / KAGGLE_FRAMES, work_host / USGRA_FRAMES
    kaggle.mkdir(parents=True)
    for path in pick_frames(train, args.frames):
        shutil.copy2(path, kaggle / path.name)
    note = f"{args.frames} real frames of kaggle-nerve/train, evenly spaced by name"
    images = data_dir(args) / "usgra-seg" / "images"
    if images.is_dir():
        usgra.mkdir()
        for path in pick_frames(images, args.frames):
            shutil.copy2(path, usgra / path.name)
        note += f"; {args.frames} of usgra-seg/images for the models trained on them"
    else:
        shutil.copytree(kaggle, usgra)
        note += " (no usgra-seg/images: the USGRA models are compared on them too)"
    notes["real"] = note
    return [PHANTOM_SET, "real"], notes


def write_phantom_frames(folder: Path, count: int) -> None:
    import cv2

    sys.path.insert(0, str(REPO))
    from edge.io.phantom import PhantomSource

    folder.mkdir(parents=True)
    source = PhantomSource(seed=0)
    for i in range(count):
        cv2.imwrite(str(folder / f"phantom_{i:03d}.png"), source.read().image)
    source.close()
