"""edge-train label export / import --format coco: the file most annotation tools speak
(CVAT, makesense, Roboflow, ...). Written and read with pycocotools conventions.

export: one image entry per frame (file names relative to --frames), the model's classes as
categories (same ids, same names), one annotation per class present per frame: polygons
(iscrowd 0) or compressed RLE (iscrowd 1). A frame the model sees no nerve in is an image with
no annotations: it stays in the file.
import: category names -> the model's class ids (or --class-map); polygons, compressed and
uncompressed RLE, any category ids, image names with folders. Every image of the file becomes
a labelled frame, an image with no annotations an empty mask. All images are checked before
anything is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from edge.fsutil import write_json_atomic
from train.label.classmap import class_ids, safety_ids
from train.label.frames import (
    LabelError,
    frame_paths,
    read_frame,
    safe_name,
    staged_folder,
    write_labelled,
)
from train.label.predict import masks_for, model_classes
from train.label.shapes import mask_to_polygons, mask_to_rle, paint, polygons_to_mask, rle_to_mask


def _region(mask: np.ndarray, encoding: str) -> tuple[object, int]:
    """(segmentation, iscrowd) for one class's mask."""
    if encoding == "rle":
        return mask_to_rle(mask), 1
    return mask_to_polygons(mask), 0


def _annotation(ann_id: int, image_id: int, cid: int, mask: np.ndarray, encoding: str) -> dict:
    ys, xs = np.nonzero(mask)
    seg, crowd = _region(mask, encoding)
    bbox = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
            int(ys.max() - ys.min() + 1)]
    return {"id": ann_id, "image_id": image_id, "category_id": cid, "segmentation": seg,
            "area": int(mask.sum()), "bbox": bbox, "iscrowd": crowd}


def export_coco(frames: str, model: str, out: str, encoding: str = "polygon") -> dict:
    paths = frame_paths(frames)
    classes = model_classes(model)
    images, anns = [], []
    preds = masks_for(model, (read_frame(p) for p in paths))
    for image_id, (path, pred) in enumerate(zip(paths, preds, strict=True), start=1):
        h, w = pred.mask.shape
        images.append({"id": image_id, "file_name": path.name, "width": w, "height": h})
        for c in classes:
            if (pred.mask == c.id).any():
                anns.append(_annotation(len(anns) + 1, image_id, c.id, pred.mask == c.id,
                                        encoding))
    doc = {"info": {"description": f"nerve-edge pre-labels by {Path(model).name}"},
           "images": images, "annotations": anns,
           "categories": [{"id": c.id, "name": c.name, "supercategory": "structure"}
                          for c in classes]}
    write_json_atomic(out, doc)
    return {"images": len(images), "annotations": len(anns), "out": out,
            "empty": sum(p.empty for p in preds)}


# ------------------------------------------------------------------------------- import
def load_coco(file: str) -> dict:
    try:
        doc = json.loads(Path(file).read_text())
    except FileNotFoundError as e:
        raise LabelError(f"COCO file {file} not found; check the path") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LabelError(f"COCO file {file} is not readable JSON ({e}); export it again") from e
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list)
                                            for k in ("images", "annotations", "categories")):
        raise LabelError(f"COCO file {file} lacks the images, annotations and categories "
                         f"lists; export it as COCO instance segmentation")
    return doc


def category_ids(doc: dict, file: str, names: dict[str, int]) -> dict[int, int]:
    """COCO category id -> class id, for the categories that name a class."""
    folded = {k.casefold(): v for k, v in names.items()}
    out = {c["id"]: folded[str(c.get("name", "")).casefold()] for c in doc["categories"]
           if str(c.get("name", "")).casefold() in folded}
    if not out:
        found = ", ".join(repr(c.get("name")) for c in doc["categories"][:5]) or "none"
        raise LabelError(f"COCO file {file}: its categories ({found}) match none of the "
                         f"classes ({', '.join(names)}): map them with --class-map NAME=ID")
    return out


def image_path(folder: Path, file_name: str) -> Path | None:
    """The image a COCO name means: the name under --images, else its last part."""
    name = file_name.replace("\\", "/")
    for candidate in (folder / name.lstrip("/"), folder / os.path.basename(name)):
        if candidate.is_file():
            return candidate
    return None


def resolve_images(doc: dict, folder: str, file: str) -> dict[int, Path]:
    found, missing = {}, []
    for image in doc["images"]:
        path = image_path(Path(folder), str(image.get("file_name", "")))
        if path is None:
            missing.append(str(image.get("file_name")))
        found[image["id"]] = path
    if missing:
        raise LabelError(f"{len(missing)} image(s) that {file} names are not in {folder} "
                         f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}): "
                         f"give the folder they are in with --images")
    return found


def segmentation_mask(seg, height: int, width: int) -> np.ndarray:
    if isinstance(seg, list):
        return polygons_to_mask(seg, height, width)
    if isinstance(seg, dict) and "counts" in seg:
        return rle_to_mask(seg, height, width)
    raise LabelError(f"a segmentation that is neither polygons nor RLE: {str(seg)[:80]}")


def import_coco(file: str, images: str, out: str, model: str = "default",
                class_map: str | None = None) -> dict:
    doc = load_coco(file)
    cats = category_ids(doc, file, class_ids(model, class_map))
    paths = resolve_images(doc, images, file)
    by_image: dict[int, list[dict]] = {}
    for a in doc["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    safety = safety_ids(model)
    counts = {"frames": 0, "empty": 0, "annotations": 0, "crowd": 0, "ignored": 0}
    with staged_folder(out) as tmp:
        for image in doc["images"]:
            pixels = read_frame(paths[image["id"]])
            h, w = pixels.shape[:2]
            regions = []
            for a in by_image.get(image["id"], []):
                if a["category_id"] not in cats:
                    counts["ignored"] += 1
                    continue
                regions.append((cats[a["category_id"]], segmentation_mask(a["segmentation"],
                                                                           h, w)))
                counts["crowd"] += int(bool(a.get("iscrowd")))
            mask = paint(regions, h, w, safety)
            write_labelled(tmp, safe_name(image["file_name"]), pixels, mask)
            counts["frames"] += 1
            counts["empty"] += int(not mask.any())
            counts["annotations"] += len(regions)
    return {**counts, "out": out}
