"""edge-train label export / import --format coco: pycocotools' RLE and polygons round-trip,
another tool's conventions import, bad files are one line and exit 2 with nothing written."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.cli_contract import assert_one_error
from tests.label.helpers import dice, edge_train, read_ids, synthetic
from train.label.shapes import mask_to_polygons

mu = pytest.importorskip("pycocotools.mask")


def _coco(truth, encoding, cat_id=1, name="nerve", folder=""):
    images, anns = [], []
    for i, (file, m) in enumerate(sorted(truth.items()), start=1):
        images.append({"id": 10 + i, "file_name": folder + file, "height": m.shape[0],
                       "width": m.shape[1]})
        if not m.any():
            continue
        if encoding == "polygon":
            seg, crowd = mask_to_polygons(m), 0
        elif encoding == "rle":
            rle = mu.encode(np.asfortranarray(m))
            seg, crowd = {"size": rle["size"], "counts": rle["counts"].decode()}, 1
        else:  # uncompressed RLE, column-major run lengths, as CVAT writes for iscrowd
            flat = m.ravel(order="F").astype(int)
            bounds = np.r_[0, np.flatnonzero(np.diff(flat)) + 1, flat.size]
            counts = ([0] if flat[0] else []) + np.diff(bounds).tolist()
            seg, crowd = {"size": list(m.shape), "counts": counts}, 1
        anns.append({"id": 100 + i, "image_id": 10 + i, "category_id": cat_id,
                     "segmentation": seg, "iscrowd": crowd, "area": int(m.sum()),
                     "bbox": [0, 0, 1, 1]})
    return {"images": images, "annotations": anns,
            "categories": [{"id": 99, "name": "background-noise"},
                           {"id": cat_id, "name": name}]}


@pytest.mark.parametrize("encoding", ["polygon", "rle", "uncompressed"])
def test_pycocotools_files_round_trip(tmp_path, encoding):
    truth = synthetic(tmp_path / "frames")
    file = tmp_path / "coco.json"
    file.write_text(json.dumps(_coco(truth, encoding)))
    proc = edge_train("label", "import", "--format", "coco", str(file), "--images",
                      str(tmp_path / "frames"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "6 frames (2 with no nerve)" in proc.stdout
    for file_name, m in truth.items():
        got = read_ids(tmp_path / "out" / "masks" / file_name)
        assert set(np.unique(got)) <= {0, 1}
        assert dice(got, m) >= 0.98 if m.any() else not got.any()
        assert (tmp_path / "out" / "images" / file_name).is_file()


def test_another_tools_conventions_import(tmp_path):
    """CVAT-like: category "Nerve" with id 7, iscrowd RLE, file names with folders."""
    truth = synthetic(tmp_path / "images" / "scan1", n=3, empty=1)
    file = tmp_path / "cvat.json"
    file.write_text(json.dumps(_coco(truth, "uncompressed", cat_id=7, name="Nerve",
                                     folder="scan1/")))
    out = tmp_path / "out"
    proc = edge_train("label", "import", str(file), "--images", str(tmp_path / "images"),
                      "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    for file_name, m in truth.items():
        got = read_ids(out / "masks" / f"scan1__{file_name}")
        assert dice(got, m) >= 0.98 if m.any() else not got.any()


def test_export_then_import_gives_the_models_masks(tmp_path):
    synthetic(tmp_path / "frames", n=2, empty=1)
    for encoding in ("rle", "polygon"):
        file = tmp_path / f"{encoding}.json"
        proc = edge_train("label", "export", "--format", "coco", "--frames",
                          str(tmp_path / "frames"), "--encoding", encoding, "--out", str(file))
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(file.read_text())
        assert len(doc["images"]) == 3 and doc["categories"][0]["name"] == "nerve"
        proc = edge_train("label", "import", str(file), "--images", str(tmp_path / "frames"),
                          "--out", str(tmp_path / f"back_{encoding}"))
        assert proc.returncode == 0, proc.stderr
        assert len(list((tmp_path / f"back_{encoding}" / "masks").glob("*.png"))) == 3


def test_categories_matching_no_class_are_one_line(tmp_path):
    truth = synthetic(tmp_path / "frames", n=1, empty=0)
    file = tmp_path / "coco.json"
    file.write_text(json.dumps(_coco(truth, "rle", cat_id=3, name="tendon")))
    out = tmp_path / "out"
    proc = edge_train("label", "import", str(file), "--images", str(tmp_path / "frames"),
                      "--out", str(out))
    assert_one_error(proc, "edge-train", "tendon", "--class-map")
    assert not out.exists() and not list(tmp_path.glob(".out.*"))
    proc = edge_train("label", "import", str(file), "--images", str(tmp_path / "frames"),
                      "--out", str(out), "--class-map", "tendon=1")
    assert proc.returncode == 0, proc.stderr


def test_missing_images_are_one_line_and_nothing_is_written(tmp_path):
    truth = synthetic(tmp_path / "frames", n=2, empty=1)
    file = tmp_path / "coco.json"
    file.write_text(json.dumps(_coco(truth, "polygon")))
    shutil.move(tmp_path / "frames" / "frame_01.png", tmp_path / "elsewhere.png")
    out = tmp_path / "out"
    proc = edge_train("label", "import", str(file), "--images", str(tmp_path / "frames"),
                      "--out", str(out))
    assert_one_error(proc, "edge-train", "frame_01.png", "--images")
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_not_a_coco_file_is_one_line(tmp_path):
    file = tmp_path / "x.json"
    file.write_text("{\"images\": 3}")
    proc = edge_train("label", "import", str(file), "--images", str(tmp_path), "--out",
                      str(tmp_path / "out"))
    assert_one_error(proc, "edge-train", str(file))


def test_an_interrupted_write_leaves_no_folder(tmp_path):
    from train.label.frames import staged_folder

    with pytest.raises(KeyboardInterrupt), staged_folder(tmp_path / "out") as tmp:
        (tmp / "images").mkdir()
        raise KeyboardInterrupt  # what SIGTERM raises through edge.signals
    assert list(tmp_path.iterdir()) == []
