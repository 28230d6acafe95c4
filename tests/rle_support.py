"""Kaggle RLE writing, for tests that build stand-ins of the Kaggle download (train_masks.csv).
The kit only reads RLE (train.datafiles.rle_decode, read_rle_csv); these are its inverse."""

from __future__ import annotations

import csv

import numpy as np

from edge.fsutil import atomic_path


def rle_encode(mask: np.ndarray) -> str:
    """Kaggle RLE: 1-based start/length pairs over the column-major (Fortran) flattened mask."""
    flat = (np.asarray(mask) > 0).flatten(order="F").astype(np.int8)
    padded = np.concatenate([[0], flat, [0]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = edges[0::2], edges[1::2]
    return " ".join(f"{s + 1} {e - s}" for s, e in zip(starts, ends, strict=True))



def write_rle_csv(path, rows) -> None:
    """Write rows (dicts with the same keys, e.g. img + pixels) atomically."""
    rows = list(rows)
    fields = list(rows[0].keys()) if rows else ["img", "pixels"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        wr = csv.DictWriter(f, fieldnames=fields)
        wr.writeheader()
        wr.writerows(rows)
