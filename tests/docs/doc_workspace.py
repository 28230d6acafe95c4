"""The folder the documented commands run in: small real stand-ins for what the docs assume is
there (a Kaggle download, a usgra-seg clone, a clinic folder, a video clip, scans, DICOM files).

Every picture is the kit's own phantom (edge/io/phantom.py: speckle, tissue, a moving nerve with
its exact mask), so nothing of the real data sets is committed or needed. The names are the
docs' own (``kaggle-download/``, ``usgra-seg/``, ``clip.mp4``, ``scans/``, ``cine.dcm``,
``exports/``), so most commands run with their paths as written.
"""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import cv2
import numpy as np

from edge.io.phantom import PhantomSource
from tests.rle_support import rle_encode  # numpy only (what edge-train prepare reads)

KAGGLE_HW = (420, 580)  # the Kaggle download's frame (rows, cols)
KAGGLE_SUBJECTS = range(1, 9)  # 8 subjects: docs/train.md evaluates subjects 1,5,7
KAGGLE_IMAGES = (1, 2)
FOLDER_HW = (192, 256)  # usgra-seg / clinic folder-layout frames
FOLDER_FRAMES = 12
CLIP_FRAMES, CLIP_FPS = 30, 30.0
SCANS = 4
CINE_FRAMES = 10
VESSEL_ID = 2


def kaggle_download(root: Path) -> list[str]:
    """kaggle-download/train/S_I.tif + S_I_mask.tif (0/255) + train_masks.csv; the stems."""
    phantom = PhantomSource(KAGGLE_HW[1], KAGGLE_HW[0], seed=1)
    train = root / "train"
    train.mkdir(parents=True)
    rows, stems = [], []
    for k, (s, i) in enumerate((s, i) for s in KAGGLE_SUBJECTS for i in KAGGLE_IMAGES):
        stem = f"{s}_{i}"
        frame, mask = phantom.frame(7 * k), phantom.truth(7 * k)
        if stem == "1_1":
            mask = np.zeros_like(mask)  # one frame without a nerve, as in the download
        assert cv2.imwrite(str(train / f"{stem}.tif"), frame)
        assert cv2.imwrite(str(train / f"{stem}_mask.tif"), mask)
        rows.append({"subject": str(s), "img": str(i), "pixels": rle_encode(mask)})
        stems.append(stem)
    with open(root / "train_masks.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["subject", "img", "pixels"])
        writer.writeheader()
        writer.writerows(rows)
    return stems


def folder_layout(root: Path, seed: int) -> Path:
    """images/NNNN.png + masks/NNNN.png with class ids (1 nerve, 2 vessel), as usgra-seg."""
    phantom = PhantomSource(FOLDER_HW[1], FOLDER_HW[0], seed=seed)
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for k in range(FOLDER_FRAMES):
        frame, nerve = phantom.frame(5 * k), phantom.truth(5 * k)
        ids = (nerve > 0).astype(np.uint8)
        cx, cy = phantom.nerve_center(5 * k)
        vessel = np.zeros_like(ids)
        cv2.circle(vessel, (max(cx - 60, 12), cy), 10, 1, -1)
        vessel[ids > 0] = 0
        frame[vessel > 0] //= 4  # a dark, round vessel beside the nerve
        ids[vessel > 0] = VESSEL_ID
        assert cv2.imwrite(str(root / "images" / f"{k:04d}.png"), frame)
        assert cv2.imwrite(str(root / "masks" / f"{k:04d}.png"), ids)
    return root


def clip(path: Path) -> Path:
    phantom = PhantomSource(320, 240, seed=2)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), CLIP_FPS, (320, 240))
    assert writer.isOpened(), f"cannot write {path}"
    for k in range(CLIP_FRAMES):
        writer.write(cv2.cvtColor(phantom.frame(k), cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def scans(root: Path) -> Path:
    phantom = PhantomSource(320, 240, seed=3)
    root.mkdir()
    for k in range(SCANS):
        assert cv2.imwrite(str(root / f"scan_{k:02d}.png"), phantom.frame(3 * k))
    return root


DICOM_SCRIPT = """
import sys
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[1])
from dicomfiles import make_us
from edge.io.phantom import PhantomSource
ws = Path(sys.argv[2])
ph = PhantomSource(256, 192, seed=4)
cine = np.stack([ph.frame(k) for k in range(int(sys.argv[3]))])
region = [(0, 0, 255, 191, (0.01, 0.01))]  # 0.1 mm pixels: the area in mm2
make_us(ws / "cine.dcm", cine, regions=region, frame_time_ms=33.3)
(ws / "exports").mkdir()
make_us(ws / "exports" / "a.dcm", cine[:4], regions=region, frame_time_ms=33.3)
make_us(ws / "exports" / "b.dcm", cine[4:5], regions=region)
"""


def dicom_files(ws: Path, python: str, env: dict, tests_dicom: Path) -> None:
    """cine.dcm (a 10-frame cine with pixel spacing) and exports/ (two files), written with
    pydicom by tests/dicom/dicomfiles.py in the device venv (the [dicom] extra lives there)."""
    subprocess.run([python, "-c", DICOM_SCRIPT, str(tests_dicom), str(ws), str(CINE_FRAMES)],
                   env=env, check=True, capture_output=True, text=True, timeout=120)


def make(ws: Path, device_python: str, env: dict, repo: Path) -> None:
    """Every stand-in, under ``ws``."""
    stems = kaggle_download(ws / "kaggle-download")
    (ws / "frames.txt").write_text("# the stand-in download's frames\n" + "\n".join(stems) + "\n")
    usgra = ws / "usgra-seg" / "dataset"
    folder_layout(usgra, seed=5)
    (usgra / "LICENSE").write_text("Attribution 4.0 International (stand-in)\n")
    folder_layout(ws / "clinic", seed=6)
    clip(ws / "clip.mp4")
    scans(ws / "scans")
    dicom_files(ws, device_python, env, repo / "tests" / "dicom")
    (ws / "benchmarks" / "results").mkdir(parents=True)  # the folder stands for the repo root
