"""edge-train label push / pull: Label Studio as the annotation tool (docs/clinic.md).

push: a project (created, or reused by title) whose labelling config lists the model's classes
as brush and polygon labels; the frames not yet in it are uploaded, each with the model's mask
as a prediction (a brush mask per class) for the annotator to correct and submit.
pull: every task with a submitted annotation -> images/NAME.png + masks/NAME.png (class ids).
A submitted annotation with nothing drawn is a frame with no nerve: an empty mask, kept.
Tasks never annotated, or skipped by the annotator, are left out and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import cv2
import numpy as np

from train.label import brush
from train.label.classmap import class_ids, lookup, safety_ids
from train.label.frames import LabelError, frame_paths, read_frame, staged_folder, write_labelled
from train.label.lsclient import LabelStudio, quote
from train.label.predict import masks_for, model_classes
from train.label.shapes import paint, polygons_to_mask

DEFAULT_PROJECT = "nerve-edge frames"
UPLOAD_BATCH = 20  # frames per import request
UPLOAD_PREFIX_LEN = 9  # Label Studio names an upload "<8 hex>-<file name>"
BRUSH, POLYGON = "brush", "polygon"


@dataclass(frozen=True)
class LSConfig:
    url: str
    token: str
    project: str = DEFAULT_PROJECT
    model: str = "default"


def label_config(model: str) -> str:
    """The labelling config: the image, and the model's classes as brush and polygon labels."""
    labels = "".join(f"<Label value={quoteattr(c.name)} background={quoteattr(c.color)}/>"
                     for c in model_classes(model))
    return ('<View><Image name="image" value="$image" zoom="true" zoomControl="true"/>'
            f'<BrushLabels name="{BRUSH}" toName="image">{labels}</BrushLabels>'
            f'<PolygonLabels name="{POLYGON}" toName="image" strokeWidth="2" '
            f'pointSize="small">{labels}</PolygonLabels></View>')


def find_project(ls: LabelStudio, title: str) -> dict | None:
    found = [p for p in ls.pages(f"/api/projects?title={quote(title)}") if p["title"] == title]
    return found[0] if found else None


def open_project(ls: LabelStudio, cfg: LSConfig) -> tuple[int, bool]:
    """(project id, created now)."""
    found = find_project(ls, cfg.project)
    if found:
        return found["id"], False
    made = ls.call("POST", "/api/projects", {"title": cfg.project,
                                             "label_config": label_config(cfg.model)})
    return made["id"], True


def all_tasks(ls: LabelStudio, project: int) -> list[dict]:
    return ls.call("GET", f"/api/projects/{project}/export?exportType=JSON"
                          f"&download_all_tasks=true")


def frame_name(task: dict) -> str:
    """The frame's file name from its task (the upload's name without Label Studio's prefix)."""
    return Path(task["data"]["image"]).name[UPLOAD_PREFIX_LEN:]


def prediction_result(mask: np.ndarray, names: dict[int, str]) -> list[dict]:
    """A class-id mask -> one brush region per class present (Label Studio's RLE)."""
    h, w = mask.shape
    return [{"from_name": BRUSH, "to_name": "image", "type": "brushlabels",
             "original_width": w, "original_height": h, "image_rotation": 0,
             "value": {"format": "rle", "rle": brush.mask_to_rle(mask == cid),
                       "brushlabels": [names[cid]]}}
            for cid in sorted(names) if (mask == cid).any()]


def push(cfg: LSConfig, frames: str) -> dict:
    """Upload the frames not in the project yet, with the model's masks as predictions."""
    paths = frame_paths(frames)
    ls = LabelStudio(cfg.url, cfg.token)
    project, created = open_project(ls, cfg)
    present = {frame_name(t) for t in all_tasks(ls, project)}
    new = [p for p in paths if p.name not in present]
    for i in range(0, len(new), UPLOAD_BATCH):
        ls.call("POST", f"/api/projects/{project}/import",
                files=[(p.name, p.read_bytes()) for p in new[i:i + UPLOAD_BATCH]])
    # the new frames, and any an interrupted push uploaded without its prediction
    bare = {frame_name(t): t["id"] for t in all_tasks(ls, project) if not t.get("predictions")}
    todo = [p for p in paths if p.name in bare]
    names = {c.id: c.name for c in model_classes(cfg.model)}
    preds = masks_for(cfg.model, (read_frame(p) for p in todo))
    for path, pred in zip(todo, preds, strict=True):
        ls.call("POST", "/api/predictions", {
            "task": bare[path.name], "model_version": Path(cfg.model).stem,
            "score": round(pred.margin * 2, 4), "result": prediction_result(pred.mask, names)})
    return {"project": cfg.project, "project_id": project, "created": created,
            "uploaded": len(new), "already_there": len(paths) - len(new),
            "prelabelled_empty": sum(p.empty for p in preds), "url": f"{ls.url}/projects/{project}"}


# ------------------------------------------------------------------------------- pull
def region_mask(item: dict, height: int, width: int) -> np.ndarray | None:
    """One result item -> bool mask (None for items that are not regions)."""
    value = item.get("value", {})
    if item.get("type") == "polygonlabels":
        points = np.asarray(value.get("points", []), np.float64).reshape(-1, 2)
        points = points * [width / 100.0, height / 100.0]  # percent -> pixel coordinates
        return polygons_to_mask([points.ravel().tolist()], height, width)
    if item.get("type") == "brushlabels":
        return brush.rle_to_mask(value["rle"], height, width)
    return None


def annotation_mask(result: list[dict], height: int, width: int, names: dict[str, int],
                    safety: frozenset[int], where: str) -> np.ndarray:
    regions = []
    for item in result:
        region = region_mask(item, height, width)
        if region is not None:
            for label in item["value"].get(item["type"], []):
                regions.append((lookup(names, label, where), region))
    return paint(regions, height, width, safety)


def latest_annotation(task: dict) -> dict | None:
    done = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
    return max(done, key=lambda a: (a.get("updated_at") or "", a["id"])) if done else None


def pull(cfg: LSConfig, out: str, class_map: str | None = None) -> dict:
    ls = LabelStudio(cfg.url, cfg.token)
    found = find_project(ls, cfg.project)
    if not found:
        raise LabelError(f"Label Studio at {ls.url} has no project {cfg.project!r}: check "
                         f"--project (edge-train label push creates it)")
    names, safety = class_ids(cfg.model, class_map), safety_ids(cfg.model)
    counts = {"frames": 0, "empty": 0, "not_annotated": 0, "skipped": 0}
    with staged_folder(out) as tmp:
        for sub in ("images", "masks"):  # there even when nothing is annotated yet
            (tmp / sub).mkdir()
        for task in all_tasks(ls, found["id"]):
            annotation = latest_annotation(task)
            if annotation is None:
                cancelled = any(a.get("was_cancelled") for a in task.get("annotations", []))
                counts["skipped" if cancelled else "not_annotated"] += 1
                continue
            data = ls.call("GET", task["data"]["image"], raw=True)
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            name = Path(frame_name(task)).stem
            mask = annotation_mask(annotation["result"], *image.shape[:2], names, safety,
                                   f"task {task['id']} ({name})")
            write_labelled(tmp, name, image, mask)
            counts["frames"] += 1
            counts["empty"] += int(not mask.any())
    return {**counts, "project": cfg.project, "out": out}
