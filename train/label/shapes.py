"""Masks <-> polygons and COCO RLE, one convention for COCO and Label Studio alike.

Polygon points are continuous image coordinates: (0, 0) is the top-left corner of the top-left
pixel, (W, H) the bottom-right corner of the last one (COCO's and Label Studio's convention;
Label Studio stores them in percent of W and H). Polygons are rasterized by pycocotools, the
reference reader of COCO files, so a polygon means the same pixels here as in any COCO tool.

A mask's outline is traced on the mask upscaled 2x (nearest), which puts the points a quarter
pixel inside the pixel edges: pycocotools then gives back exactly the same pixels (a trace
through pixel centres would lose about half of the boundary pixels).
"""

from __future__ import annotations

import cv2
import numpy as np

TRACE_SCALE = 2
MIN_POINTS = 3


def _coco_mask():
    from edge.deps import require

    return require("pycocotools.mask")


def mask_to_polygons(mask: np.ndarray) -> list[list[float]]:
    """0/nonzero HxW mask -> outer outlines as flat [x1, y1, x2, y2, ...] lists (holes are
    filled: COCO polygons have none)."""
    k = TRACE_SCALE
    big = cv2.resize((np.asarray(mask) > 0).astype(np.uint8), None, fx=k, fy=k,
                     interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        points = (c.reshape(-1, 2).astype(np.float64) + 0.5) / k
        if len(points) >= MIN_POINTS:
            polys.append([round(float(v), 4) for v in points.ravel()])
    return polys


def polygons_to_mask(polys: list[list[float]], height: int, width: int) -> np.ndarray:
    """Flat polygons in pixel coordinates -> HxW bool mask (their union)."""
    polys = [p for p in polys if len(p) >= 2 * MIN_POINTS]
    if not polys:
        return np.zeros((height, width), bool)
    mu = _coco_mask()
    rle = mu.merge(mu.frPyObjects([list(map(float, p)) for p in polys], height, width))
    return mu.decode(rle).astype(bool)


def mask_to_rle(mask: np.ndarray) -> dict:
    """HxW mask -> COCO compressed RLE ({"size": [h, w], "counts": str})."""
    mu = _coco_mask()
    rle = mu.encode(np.asfortranarray((np.asarray(mask) > 0).astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def rle_to_mask(rle: dict, height: int, width: int) -> np.ndarray:
    """COCO RLE, compressed (counts a string) or not (counts a list) -> HxW bool mask."""
    mu = _coco_mask()
    if isinstance(rle.get("counts"), list):
        rle = mu.frPyObjects(rle, height, width)
    elif isinstance(rle.get("counts"), str):
        rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    return mu.decode(rle).astype(bool)


def paint(regions: list[tuple[int, np.ndarray]], height: int, width: int,
          safety_ids: frozenset[int] = frozenset()) -> np.ndarray:
    """(class id, bool mask) regions -> uint8 class-id mask; safety classes painted last
    (they win where regions overlap, as in edge's own class map)."""
    out = np.zeros((height, width), np.uint8)
    for cid, region in sorted(regions, key=lambda r: r[0] in safety_ids):
        out[region] = cid
    return out
