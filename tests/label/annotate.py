"""A person annotating in Label Studio, through its API: from truth masks, as polygons or as
brush strokes (Label Studio's RLE), or an explicit "nothing here" (a submit with no region)."""

from __future__ import annotations

import numpy as np

from train.label import brush
from train.label.labelstudio import all_tasks, find_project, frame_name
from train.label.lsclient import LabelStudio
from train.label.shapes import mask_to_polygons


def result_for(mask: np.ndarray, kind: str, label: str = "nerve") -> list[dict]:
    h, w = mask.shape
    common = {"to_name": "image", "original_width": w, "original_height": h,
              "image_rotation": 0}
    if not mask.any():
        return []
    if kind == "brush":
        return [{**common, "from_name": "brush", "type": "brushlabels",
                 "value": {"format": "rle", "rle": brush.mask_to_rle(mask),
                           "brushlabels": [label]}}]
    out = []
    for poly in mask_to_polygons(mask):
        pts = np.asarray(poly).reshape(-1, 2) / [w, h] * 100.0
        out.append({**common, "from_name": "polygon", "type": "polygonlabels",
                    "value": {"points": pts.tolist(), "closed": True,
                              "polygonlabels": [label]}})
    return out


def annotate_project(url: str, token: str, project: str, truth: dict[str, np.ndarray],
                     kind: str, leave: tuple[str, ...] = (), cancel: tuple[str, ...] = ()):
    """Submit one annotation per task whose frame is in ``truth`` (by file name)."""
    ls = LabelStudio(url, token)
    pid = find_project(ls, project)["id"]
    for task in all_tasks(ls, pid):
        name = frame_name(task)
        if name in leave:
            continue
        body = {"result": [] if name in cancel else result_for(truth[name] > 0, kind),
                "was_cancelled": name in cancel}
        ls.call("POST", f"/api/tasks/{task['id']}/annotations", body)
