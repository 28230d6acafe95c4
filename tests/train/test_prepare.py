"""edge-train prepare on tiny stand-ins of the public downloads (generated in tmp): a Kaggle
training download (580x420 .tif frames + _mask.tif + train_masks.csv) and a usgra-seg clone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.rle_support import rle_encode, write_rle_csv
from train import datasets as D
from train import prepare as P
from train.cli import main as train_main
from train.datafiles import KAGGLE_FRAME_HW

FRAME_HW = KAGGLE_FRAME_HW  # 420 x 580, the download's frames
OUT_HW = (185, 256)  # --width 256 keeps the aspect
SUBJECTS = (1, 2, 3)
IMAGES = (1, 2)
RLE_ONLY = "2_2"  # its _mask.tif is removed: the mask must come from train_masks.csv
EMPTY = "3_1"  # no nerve
ROOT = Path(__file__).resolve().parents[2]


def _nerve(stem: str) -> np.ndarray:
    """A full-size 0/1 mask: an ellipse whose place depends on the frame."""
    s, i = (int(v) for v in stem.split("_"))
    mask = np.zeros(FRAME_HW, np.uint8)
    if stem != EMPTY:
        cv2.ellipse(mask, (150 + 60 * s, 120 + 40 * i), (50, 30), 0, 0, 360, 1, -1)
    return mask


def _frame(stem: str, rng: np.random.Generator) -> np.ndarray:
    img = rng.integers(10, 90, size=FRAME_HW).astype(np.uint8)
    img[_nerve(stem) > 0] = 200
    return img


@pytest.fixture
def download(tmp_path) -> Path:
    """SRC/train/S_I.tif + S_I_mask.tif (0/255) and SRC/train_masks.csv, like Kaggle's."""
    src = tmp_path / "download"
    (src / "train").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for s in SUBJECTS:
        for i in IMAGES:
            stem = f"{s}_{i}"
            assert cv2.imwrite(str(src / "train" / f"{stem}.tif"), _frame(stem, rng))
            if stem != RLE_ONLY:
                assert cv2.imwrite(str(src / "train" / f"{stem}_mask.tif"), _nerve(stem) * 255)
            rows.append({"subject": str(s), "img": str(i), "pixels": rle_encode(_nerve(stem))})
    write_rle_csv(src / "train_masks.csv", rows)
    return src


def _prepare(download: Path, out: Path, **kw) -> dict:
    return P.prepare_kaggle(P.KaggleOptions(src=download, out=out, **kw), say=lambda _: None)


def _pil_box(img: np.ndarray) -> np.ndarray:
    """Pillow's BOX resize: the reference 'area' filter the shared data was made with."""
    image = pytest.importorskip("PIL.Image")
    return np.array(image.fromarray(img).resize(OUT_HW[::-1], image.BOX))


def _expected_mask(stem: str) -> np.ndarray:
    area = _pil_box(_nerve(stem).astype(np.float32))
    return np.where(area >= 0.5, 255, 0).astype(np.uint8)


def test_kaggle_names_sizes_and_mask_values(download, tmp_path):
    out = tmp_path / "kaggle-nerve"
    record = _prepare(download, out)
    stems = [f"{s}_{i}" for s in SUBJECTS for i in IMAGES]
    names = sorted(p.name for p in (out / "train").iterdir())
    assert names == sorted([f"{t}.png" for t in stems] + [f"{t}_mask.png" for t in stems])
    assert (out / "train_masks.csv").read_bytes() == (download / "train_masks.csv").read_bytes()
    for stem in stems:
        img = cv2.imread(str(out / "train" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(out / "train" / f"{stem}_mask.png"), cv2.IMREAD_UNCHANGED)
        assert img.shape == mask.shape == OUT_HW and img.dtype == mask.dtype == np.uint8
        assert set(np.unique(mask).tolist()) <= {0, 255}
        full = _nerve(stem).sum() * (OUT_HW[0] * OUT_HW[1]) / (FRAME_HW[0] * FRAME_HW[1])
        assert abs(int(mask.sum()) // 255 - full) <= 0.05 * full + 1, stem  # area is kept
    assert record["frames"] == 6 and record["frames_with_nerve"] == 5 and record["subjects"] == 3
    assert json.loads((out / P.RECORD).read_text()) == record


def test_kaggle_resize_is_a_box_filter_and_jpeg_is_opt_in(download, tmp_path):
    """Masks equal Pillow's BOX resize + >= 0.5 exactly (how the shared data was made; OpenCV's
    INTER_AREA differs at the edges); images within one grey level (Pillow's 8-bit rounding)."""
    _prepare(download, tmp_path / "a")
    for stem in ("1_1", "2_2", EMPTY):
        mask = cv2.imread(str(tmp_path / f"a/train/{stem}_mask.png"), cv2.IMREAD_GRAYSCALE)
        np.testing.assert_array_equal(mask, _expected_mask(stem), err_msg=stem)
    source = cv2.imread(str(download / "train" / "1_1.tif"), cv2.IMREAD_GRAYSCALE)
    area = _pil_box(source).astype(int)
    plain = cv2.imread(str(tmp_path / "a/train/1_1.png"), cv2.IMREAD_GRAYSCALE)
    assert np.abs(plain.astype(int) - area).max() <= 1
    _prepare(download, tmp_path / "j", jpeg_quality=50)
    jpeg = cv2.imread(str(tmp_path / "j/train/1_1.png"), cv2.IMREAD_GRAYSCALE)
    assert jpeg.shape == OUT_HW and np.abs(jpeg.astype(int) - plain).max() > 1


def test_kaggle_result_is_read_and_split_by_subject(download, tmp_path):
    out = tmp_path / "kaggle-nerve"
    _prepare(download, out)
    samples = D.find_samples(out / "train")
    assert D.detect_layout(out / "train") == "kaggle"
    train, val = D.split_by_subject(samples, 0.3, 0)
    assert {s.subject for s in train}.isdisjoint({s.subject for s in val})
    assert sorted({s.subject for s in samples}) == ["1", "2", "3"]
    masks = [D.read_mask(s) for s in samples]  # 0/255 passes the kit's binary check
    assert sum(bool(m.any()) for m in masks) == 5


def test_kaggle_frame_list_and_rle_only(download, tmp_path):
    frames = tmp_path / "frames.txt"
    frames.write_text("# two frames\n1_2\n2_2.tif\n\n")
    _prepare(download, tmp_path / "sub", frames=frames, masks="rle")
    names = sorted(p.name for p in (tmp_path / "sub/train").iterdir())
    assert names == ["1_2.png", "1_2_mask.png", "2_2.png", "2_2_mask.png"]
    rle_mask = cv2.imread(str(tmp_path / "sub/train/2_2_mask.png"), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(rle_mask, _expected_mask("2_2"))
    frames.write_text("1_2\n9_9\n")
    with pytest.raises(D.DataError, match="9_9"):
        _prepare(download, tmp_path / "missing", frames=frames)
    assert not (tmp_path / "missing").exists()


def test_kaggle_tif_masks_only_refuses_a_missing_mask(download, tmp_path):
    with pytest.raises(D.DataError, match="2_2_mask.tif is missing"):
        _prepare(download, tmp_path / "out", masks="tif")
    assert not (tmp_path / "out").exists()
    assert not any(p.name.startswith(".out.") for p in tmp_path.iterdir())  # staging removed


def test_kaggle_refuses_a_non_empty_out_and_a_broken_frame(download, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(D.DataError, match="not empty"):
        _prepare(download, out)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    (download / "train" / "3_2.tif").write_bytes(b"not a tiff")
    with pytest.raises(D.DataError, match="3_2.tif"):
        _prepare(download, tmp_path / "broken")
    assert not (tmp_path / "broken").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.fixture
def usgra_clone(tmp_path, make_folder) -> Path:
    """CLONE/dataset/images + masks (class ids, 2 = vessel), dataset/test/, dataset/LICENSE."""
    clone = tmp_path / "usgra-seg"
    make_folder(clone / "dataset")
    test = clone / "dataset" / "test"
    for sub in ("images", "masks"):
        (test / sub).mkdir(parents=True)
    ids = np.zeros((32, 48), np.uint8)
    ids[10:20, 10:20] = 1
    cv2.imwrite(str(test / "images" / "9000.png"), ids * 120)
    cv2.imwrite(str(test / "masks" / "9000.png"), ids)
    (clone / "dataset" / "LICENSE").write_text("Attribution 4.0 International\n")
    return clone


def test_usgra_copies_checked_pairs(usgra_clone, tmp_path):
    out = tmp_path / "usgra"
    record = P.prepare_usgra(usgra_clone, out, say=lambda _: None)
    src = usgra_clone / "dataset"
    names = sorted(p.name for p in (src / "images").iterdir())
    for sub in ("images", "masks"):
        assert sorted(p.name for p in (out / sub).iterdir()) == names
        for name in names:
            assert (out / sub / name).read_bytes() == (src / sub / name).read_bytes()
    assert (out / "LICENSE").read_text().startswith("Attribution 4.0")
    assert record["frames"] == len(names) and D.detect_layout(out) == "folder"
    samples = D.find_samples(out, layout="folder")
    assert len(D.split_by_subject(samples, 0.2, 0)[1]) >= 1
    with_test = P.prepare_usgra(usgra_clone, tmp_path / "all", with_test=True, say=print)
    assert with_test["frames"] == len(names) + 1
    assert (tmp_path / "all" / "masks" / "9000.png").is_file()


def test_usgra_refuses_color_masks_and_size_mismatch(usgra_clone, tmp_path):
    masks = usgra_clone / "dataset" / "masks"
    first = sorted(masks.iterdir())[0]
    color = np.zeros((32, 48, 3), np.uint8)
    color[..., 2] = 200  # a red label saved as RGB: colors, not class ids
    cv2.imwrite(str(first), color)
    with pytest.raises(D.DataError, match="color image, not class ids"):
        P.prepare_usgra(usgra_clone, tmp_path / "out", say=lambda _: None)
    cv2.imwrite(str(first), np.zeros((16, 16), np.uint8))
    with pytest.raises(D.DataError, match="16x16"):
        P.prepare_usgra(usgra_clone, tmp_path / "out", say=lambda _: None)
    assert not (tmp_path / "out").exists()


def test_cli_prepare_exit_codes(download, tmp_path, capsys):
    out = tmp_path / "cli"
    assert train_main(["prepare", "kaggle", "--src", str(download), "--out", str(out),
                       "--width", "128"]) == 0
    assert cv2.imread(str(out / "train" / "1_1.png")).shape[:2] == (93, 128)
    assert train_main(["prepare", "usgra", "--src", str(tmp_path / "nope"),
                       "--out", str(tmp_path / "u")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("edge-train: error: --src") and "usgra-seg" in err[-1]
    assert train_main(["prepare", "kaggle", "--src", str(download), "--out",
                       str(tmp_path / "w"), "--width", "4000"]) == 2


def test_prepare_does_not_import_tensorflow():
    """It must run in the device environment (no TensorFlow there)."""
    code = "import sys, train.cli, train.prepare; print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    assert done.stdout.strip() == "False"


def test_kaggle_interrupted_leaves_nothing(download, tmp_path, monkeypatch):
    """Ctrl-C (or SIGTERM, which the CLI turns into the same exception) half-way: no output
    folder, no staging folder."""
    real = P._prepare_kaggle_frame
    calls = []

    def stop_on_third(*args):
        calls.append(args[0])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(P, "_prepare_kaggle_frame", stop_on_third)
    with pytest.raises(KeyboardInterrupt):
        _prepare(download, tmp_path / "out")
    assert len(calls) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["download"]
