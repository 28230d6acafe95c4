"""train.datasets: layouts, split, bad input, masks, RLE (no TensorFlow needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.model.preprocess import PreprocessConfig
from tests.rle_support import rle_encode, write_rle_csv
from train import datafiles as F
from train import datasets as D
from train.datasets import DataError

TINY = PreprocessConfig(input_hw=(16, 24))
REAL_RLE_IDS = ("1_2", "10_1", "25_107", "41_12")  # a few real frames with nerves
N_FRAMES = 24  # conftest: 6 subjects x 4 frames


def test_train_datasets_and_evaluator_import_without_tensorflow():
    code = ("import sys, train.datasets, edge.model.evaluate; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_kaggle_layout_found_with_subjects(kaggle_dir):
    assert D.detect_layout(kaggle_dir) == "kaggle"
    samples = D.find_samples(kaggle_dir)
    assert len(samples) == N_FRAMES
    s = next(s for s in samples if s.stem == "3_2")
    assert s.subject == "3" and s.mask_path.endswith("3_2_mask.png")


def test_folder_layout_class_ids_pick_the_nerve(folder_dir):
    assert D.detect_layout(folder_dir) == "folder"
    samples = D.find_samples(folder_dir)
    assert len(samples) == N_FRAMES
    assert all(s.subject == s.stem for s in samples)  # no CSV: each image its own subject
    ids = cv2.imread(samples[1].mask_path, cv2.IMREAD_UNCHANGED)
    nerve = D.read_mask(samples[1], nerve_class=1)
    vessel = D.read_mask(samples[1], nerve_class=2)
    assert np.array_equal(nerve, (ids == 1).astype(np.uint8))
    assert vessel[:4, :6].all() and not nerve[:4, :6].any()


def test_subjects_csv_groups_folder_images(folder_dir, tmp_path):
    stems = [s.stem for s in D.find_samples(folder_dir)]
    csv = tmp_path / "subjects.csv"
    csv.write_text("stem,subject\n" + "".join(f"{st},p{i % 3}\n" for i, st in enumerate(stems)))
    samples = D.find_samples(folder_dir, subjects_csv=csv)
    assert {s.subject for s in samples} == {"p0", "p1", "p2"}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_split_never_shares_a_subject(kaggle_dir, seed):
    samples = D.find_samples(kaggle_dir)
    train, val = D.split_by_subject(samples, 0.3, seed)
    assert train and val and len(train) + len(val) == len(samples)
    assert not {s.subject for s in train} & {s.subject for s in val}


def test_split_is_seeded(kaggle_dir):
    samples = D.find_samples(kaggle_dir)
    a = D.split_by_subject(samples, 0.3, 7)[1]
    b = D.split_by_subject(samples, 0.3, 7)[1]
    assert [s.stem for s in a] == [s.stem for s in b]


def test_split_with_one_subject_is_an_error(kaggle_dir):
    one = [s for s in D.find_samples(kaggle_dir) if s.subject == "1"]
    with pytest.raises(DataError, match="at least 2 subjects"):
        D.split_by_subject(one, 0.2, 0)


def test_missing_and_empty_data_folders(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        D.find_samples(tmp_path / "nope")
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match="no images found"):
        D.find_samples(tmp_path, layout="folder")


def test_image_without_mask_and_mask_without_image(kaggle_dir, folder_dir):
    (kaggle_dir / "2_3_mask.png").unlink()
    with pytest.raises(DataError, match="have no mask.*2_3"):
        D.find_samples(kaggle_dir)
    (folder_dir / "images" / "0004.png").unlink()
    with pytest.raises(DataError, match="have no image.*0004"):
        D.find_samples(folder_dir)


def test_unreadable_image_is_named(kaggle_dir):
    (kaggle_dir / "4_2.png").write_bytes(b"not a png")
    samples = D.find_samples(kaggle_dir)
    with pytest.raises(DataError, match="4_2.png"):
        D.load_arrays(samples, TINY)


def test_kaggle_mask_with_non_binary_values(kaggle_dir):
    m = np.zeros((32, 48), np.uint8)
    m[5:9, 5:9] = 128
    cv2.imwrite(str(kaggle_dir / "5_2_mask.png"), m)
    sample = next(s for s in D.find_samples(kaggle_dir) if s.stem == "5_2")
    with pytest.raises(DataError, match="5_2_mask.png.*0/255"):
        D.read_mask(sample)


def test_folder_mask_holding_colors_is_refused(folder_dir):
    colors = np.zeros((32, 48, 3), np.uint8)
    colors[10:20, 10:20] = (0, 0, 128)  # a palette color written out as RGB
    cv2.imwrite(str(folder_dir / "masks" / "0003.png"), colors)
    sample = next(s for s in D.find_samples(folder_dir) if s.stem == "0003")
    with pytest.raises(DataError, match="0003.png"):
        D.read_mask(sample)


def test_palette_png_gives_indices_with_and_without_pillow(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    ids = np.zeros((10, 12), np.uint8)
    ids[2:5, 3:7] = 1
    ids[6:9, 1:4] = 2
    im = Image.fromarray(ids, mode="P")
    im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 - 3) * 3)
    path = tmp_path / "m.png"
    im.save(path)
    assert np.array_equal(F.read_class_ids(path), ids)
    palette = F._png_palette(path)  # the Pillow-free path
    recovered = F._colors_to_ids(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), palette, path)
    assert np.array_equal(recovered, ids)


def test_wrong_nerve_class_finds_no_nerve(folder_dir):
    samples = D.find_samples(folder_dir)
    _, y = D.load_arrays(samples, TINY, nerve_class=3)
    with pytest.raises(DataError, match="--nerve-class"):
        D.check_has_nerve(y, "training", 3)


def test_load_arrays_shapes_empty_masks_and_cache(kaggle_dir, tmp_path):
    samples = D.find_samples(kaggle_dir)
    x, y = D.load_arrays(samples, TINY, cache_dir=tmp_path / "cache")
    assert x.shape == y.shape == (len(samples), 16, 24)
    assert x.dtype == y.dtype == np.uint8 and set(np.unique(y)) <= {0, 1}
    empty = [i for i, s in enumerate(samples) if s.stem.endswith("_1")]
    assert not y[empty].any() and y.any()  # every subject's first frame is empty
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    x2, y2 = D.load_arrays(samples, TINY, cache_dir=tmp_path / "cache")
    assert np.array_equal(x, x2) and np.array_equal(y, y2)


def test_sixteen_bit_frames_load(kaggle_dir):
    img16 = (np.arange(32 * 48, dtype=np.uint16).reshape(32, 48) * 40).astype(np.uint16)
    cv2.imwrite(str(kaggle_dir / "1_2.png"), img16)
    sample = next(s for s in D.find_samples(kaggle_dir) if s.stem == "1_2")
    assert D.read_image(sample.image_path).dtype == np.uint16
    x, _ = D.load_arrays([sample], TINY)
    assert x.dtype == np.uint8 and x.max() > 100


def test_rle_round_trip_and_convention():
    m = np.zeros((4, 3), np.uint8)
    m[1:3, 0] = 1  # column-major: pixels 2,3 (1-based)
    m[0, 2] = 1  # column 2, row 0 -> 9
    assert rle_encode(m) == "2 2 9 1"
    rng = np.random.default_rng(0)
    for _ in range(5):
        r = (rng.random((20, 30)) > 0.7).astype(np.uint8)
        assert np.array_equal(F.rle_decode(rle_encode(r), (20, 30)), r)
    assert rle_encode(np.zeros((5, 5))) == ""
    assert not F.rle_decode("", (5, 5)).any()


def test_rle_csv_write_read(tmp_path):
    rows = [{"img": "1_1", "pixels": ""}, {"img": "1_2", "pixels": "3 4"}]
    write_rle_csv(tmp_path / "sub.csv", rows)
    assert F.read_rle_csv(tmp_path / "sub.csv") == rows


def test_rle_agrees_with_real_masks(real_data):
    rows = {f"{r['subject']}_{r['img']}": r["pixels"]
            for r in F.read_rle_csv(real_data / "kaggle-nerve" / "train_masks.csv")}
    train_dir = real_data / "kaggle-nerve" / "train"
    for stem in REAL_RLE_IDS:
        png = cv2.imread(str(train_dir / f"{stem}_mask.png"), cv2.IMREAD_GRAYSCALE) > 0
        full = F.rle_decode(rows[stem], F.KAGGLE_FRAME_HW).astype(np.float32)
        small = cv2.resize(full, (png.shape[1], png.shape[0]), interpolation=cv2.INTER_AREA)
        small = small >= 0.5
        iou = (small & png).sum() / max(1, (small | png).sum())
        assert png.any() and iou > 0.95, f"{stem}: IoU {iou:.3f}"
        assert rle_encode(full) == rows[stem].strip()
