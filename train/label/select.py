"""edge-train select: which captured frames are worth a person's time.

1. Near-duplicates go: each frame, shrunk to DUP_SIDE x DUP_SIDE gray, is compared with every
   frame kept so far; a mean absolute difference under ``dup_threshold`` (gray levels of 255)
   drops it (a cine loop's neighbours, the probe held still, a revisited view).
2. The model looks at the rest (train.label.predict): frames it is unsure about come first,
   ``uncertainty = (1 - 2 * margin) + flip_disagreement`` (both terms in [0, 1]; the margin
   is taken where the model sees anything, so a faint blob counts as unsure).
3. A share of the picks (``empty_share``) goes to frames where the model sees no nerve, most
   unsure first: a fine-tune needs "no nerve" frames, or it outlines every frame.
Every frame gets one CSV row saying what happened to it and why.
"""

from __future__ import annotations

import csv
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.fsutil import atomic_write_text
from edge.model.preprocess import to_gray8
from train.label.frames import LabelError, frame_paths, read_frame, staged_folder
from train.label.predict import Prediction, masks_for

DUP_SIDE = 16  # px: small enough to ignore speckle, large enough to see a probe move
DEFAULT_DUP_THRESHOLD = 2.0  # mean |difference| in gray levels of 255 at DUP_SIDE px
DEFAULT_EMPTY_SHARE = 0.2
CSV_NAME = "selection.csv"
FIELDS = ("frame", "status", "reason", "uncertainty", "margin", "flip_disagreement",
          "model_sees_nerve", "duplicate_of")


@dataclass(frozen=True)
class SelectConfig:
    frames: str
    out: str
    model: str = "default"
    n: int = 100
    dup_threshold: float = DEFAULT_DUP_THRESHOLD
    empty_share: float = DEFAULT_EMPTY_SHARE

    def __post_init__(self):
        if self.n < 1 or not 0.0 <= self.empty_share <= 1.0 or self.dup_threshold < 0:
            raise LabelError(f"select: --n {self.n}, --empty-share {self.empty_share}, "
                             f"--dup-threshold {self.dup_threshold}: use n >= 1, a share in "
                             f"[0, 1] and a threshold >= 0")


def thumb(image: np.ndarray) -> np.ndarray:
    gray = to_gray8(image)
    return cv2.resize(gray, (DUP_SIDE, DUP_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)


def drop_duplicates(paths: list[Path], threshold: float) -> tuple[list[int], dict[int, tuple]]:
    """(indices kept, {dropped index: (index of its near-twin, difference)})."""
    kept, dropped, thumbs = [], {}, []
    for i, path in enumerate(paths):
        t = thumb(read_frame(path))
        if thumbs:
            diffs = np.abs(np.stack(thumbs) - t).mean(axis=(1, 2))
            j = int(diffs.argmin())
            if diffs[j] < threshold:
                dropped[i] = (kept[j], float(diffs[j]))
                continue
        kept.append(i)
        thumbs.append(t)
    return kept, dropped


def uncertainty(p: Prediction) -> float:
    return (1.0 - 2.0 * p.margin) + p.flip_disagreement


def pick(preds: dict[int, Prediction], n: int, empty_share: float) -> list[int]:
    """Up to ``n`` indices: round(n * empty_share) from frames the model sees empty, the rest
    from the others, each pool most unsure first; a short pool's places go to the other."""
    def ranked(empty: bool) -> list[int]:
        pool = [i for i, p in preds.items() if p.empty == empty]
        return sorted(pool, key=lambda i: -uncertainty(preds[i]))

    empties, others = ranked(True), ranked(False)
    n_empty = min(len(empties), max(round(n * empty_share), n - len(others)))
    return empties[:n_empty] + others[: n - n_empty]


def rows(paths, preds, dropped, picked) -> list[dict]:
    chosen = set(picked)
    out = []
    for i, path in enumerate(paths):
        row = dict.fromkeys(FIELDS, "")
        row["frame"] = path.name
        if i in dropped:
            twin, diff = dropped[i]
            row.update(status="duplicate", duplicate_of=paths[twin].name,
                       reason=f"near-duplicate of {paths[twin].name} (difference {diff:.2f})")
            out.append(row)
            continue
        p = preds[i]
        row.update(uncertainty=f"{uncertainty(p):.4f}", margin=f"{p.margin:.4f}",
                   flip_disagreement=f"{p.flip_disagreement:.4f}",
                   model_sees_nerve="no" if p.empty else "yes")
        kind = "no nerve seen by the model" if p.empty else "nerve seen by the model"
        if i in chosen:
            row.update(status="selected", reason=f"{kind}; pick {picked.index(i) + 1} of "
                                                 f"{len(picked)} (most unsure first)")
        else:
            row.update(status="not selected", reason=f"{kind}; the model is surer here than "
                                                     f"on the selected frames")
        out.append(row)
    return out


def csv_text(table: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(table)
    return buf.getvalue()


def select(cfg: SelectConfig) -> dict:
    """Copy the chosen frames (byte for byte) and selection.csv into cfg.out; the summary."""
    paths = frame_paths(cfg.frames)
    kept, dropped = drop_duplicates(paths, cfg.dup_threshold)
    preds = dict(zip(kept, masks_for(cfg.model, (read_frame(paths[i]) for i in kept)),
                     strict=True))
    picked = pick(preds, cfg.n, cfg.empty_share)
    with staged_folder(cfg.out) as tmp:
        for i in picked:
            shutil.copyfile(paths[i], tmp / paths[i].name)
        atomic_write_text(tmp / CSV_NAME, csv_text(rows(paths, preds, dropped, picked)))
    return {"frames": len(paths), "duplicates": len(dropped), "selected": len(picked),
            "selected_empty": sum(preds[i].empty for i in picked),
            "empty_seen": sum(p.empty for p in preds.values()), "out": cfg.out}
