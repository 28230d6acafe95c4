"""Evaluation: run a model on frames, score it with train.metrics, draw curves and overlays.

`evaluate()` backs `edge-train eval`: a Keras model (.keras/.h5, or a run folder), or a
.tflite/.onnx through edge.backends.open_backend, on the run's validation subjects (default
when given a run folder), all subjects, or a list. Writes metrics.json and overlays.png (the 4
worst and 4 best frames: image, truth contour in green, prediction contour in red).
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.errors import ModelError
from edge.metadata import load_meta, write_json_atomic
from edge.preprocess import PreprocessConfig
from train import datasets, metrics

PREDICT_BATCH = 32  # frames per forward pass while evaluating
GRID_EACH = 4  # worst and best frames shown in overlays.png
TRUTH_BGR = (0, 255, 0)
PRED_BGR = (0, 0, 255)
OVERLAY_SCALE = 2  # overlay tiles drawn at 2x the model input for legibility
CURVES_DPI = 100


@dataclass(frozen=True)
class EvalConfig:
    """model: .keras/.h5/.tflite/.onnx or a run folder. data: frames folder (default: the
    run's). subjects: "val" | "all" | "1,5,7". out: folder for metrics.json + overlays.png."""

    model: str
    out: str
    data: str | None = None
    layout: str | None = None
    nerve_class: int | None = None
    subjects_csv: str | None = None
    subjects: str = "val"
    input_hw: tuple[int, int] | None = None
    threshold: float = 0.5
    presence_threshold: float = 0.5


# ---------------------------------------------------------------- prediction


_FORWARD = weakref.WeakKeyDictionary()  # model -> compiled inference function


def _forward(model):
    """A compiled inference function per model (any batch size: no retracing). Kept outside
    the model so Keras does not track it."""
    import tensorflow as tf

    fn = _FORWARD.get(model)
    if fn is None:
        spec = tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32)
        fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        _FORWARD[model] = fn
    return fn


def predict_keras(model, x_norm: np.ndarray, batch: int = PREDICT_BATCH):
    """(mask probs (N,H,W) float32, presence (N,) or None). Calls the model directly (not
    model.predict) so it also works inside a distribution strategy's callback."""
    masks, pres = [], []
    forward = _forward(model)
    for i in range(0, len(x_norm), batch):
        out = forward(np.ascontiguousarray(x_norm[i : i + batch], np.float32))
        if isinstance(out, (list, tuple)):
            masks.append(np.asarray(out[0])[..., 0])
            pres.append(np.asarray(out[1]).reshape(-1))
        elif isinstance(out, dict):
            masks.append(np.asarray(out["mask"])[..., 0])
            pres.append(np.asarray(out["presence"]).reshape(-1))
        else:
            masks.append(np.asarray(out)[..., 0])
    mask = np.concatenate(masks) if masks else np.zeros((0,) + x_norm.shape[1:3], np.float32)
    return mask, (np.concatenate(pres) if pres else None)


def predict_backend(backend, x_uint8: np.ndarray, pre_cfg: PreprocessConfig):
    """Run an edge backend (tflite/onnx) frame by frame; (mask probs, presence or None)."""
    from edge.postprocess import split_outputs
    from edge.preprocess import normalize

    masks, pres = [], []
    for frame in x_uint8:
        prob, presence = split_outputs(backend.run(normalize(frame, pre_cfg)))
        masks.append(prob)
        if presence is not None:
            pres.append(presence)
    return np.stack(masks), (np.asarray(pres) if len(pres) == len(masks) else None)


def score(y_true, prob, presence=None, threshold=0.5, presence_threshold=0.5):
    """(metrics dict, per-image Dice, binary predictions) the way the device decides."""
    pred = metrics.binarize(prob, threshold, presence, presence_threshold)
    return metrics.summarize(y_true, pred), metrics.dice_per_image(y_true, pred), pred


# ---------------------------------------------------------------- plots


def _savefig_atomic(fig, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=CURVES_DPI)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_curves(history_csv, png) -> None:
    """Loss and validation Dice vs epoch from history.csv (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(history_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]

    def col(name):
        return [float(r[name]) if r.get(name) not in (None, "") else np.nan for r in rows]

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("loss", "val_loss"):
        if key in rows[0]:
            a1.plot(epochs, col(key), marker=".", label=key)
    a1.set_xlabel("epoch")
    a1.set_title("loss")
    a1.legend()
    for key in ("val_dice", "val_pooled_dice", "soft_dice"):
        if key in rows[0]:
            a2.plot(epochs, col(key), marker=".", label=key)
    a2.set_xlabel("epoch")
    a2.set_title("validation Dice (threshold 0.5)")
    a2.set_ylim(0, 1)
    a2.legend()
    fig.tight_layout()
    _savefig_atomic(fig, Path(png))
    plt.close(fig)


def _tile(gray: np.ndarray, truth: np.ndarray, pred: np.ndarray, label: str) -> np.ndarray:
    h, w = gray.shape
    big = (w * OVERLAY_SCALE, h * OVERLAY_SCALE)
    img = cv2.cvtColor(cv2.resize(gray, big, interpolation=cv2.INTER_LINEAR), cv2.COLOR_GRAY2BGR)
    for m, color in ((truth, TRUTH_BGR), (pred, PRED_BGR)):
        m_big = cv2.resize(m.astype(np.uint8), big, interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(m_big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(img, contours, -1, color, 2)
    cv2.putText(img, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                cv2.LINE_AA)
    return img


def write_overlays(png, x_uint8, y_true, pred, dice, stems) -> None:
    """A grid: top row the GRID_EACH worst frames, bottom row the best (green truth, red
    prediction). Written atomically with OpenCV (no display needed)."""
    order = np.argsort(dice, kind="stable")
    n = min(GRID_EACH, len(order))
    rows = []
    for idx in (order[:n], order[::-1][:n]):
        tiles = [_tile(x_uint8[i], y_true[i], pred[i], f"{stems[i]} dice {dice[i]:.2f}")
                 for i in idx]
        while len(tiles) < GRID_EACH:
            tiles.append(np.zeros_like(tiles[0]))
        rows.append(np.concatenate(tiles, axis=1))
    grid = np.concatenate(rows, axis=0)
    path = Path(png)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        cv2.imwrite(tmp, grid)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ---------------------------------------------------------------- edge-train eval


def _run_dir_of(model_path: Path) -> Path | None:
    d = model_path if model_path.is_dir() else model_path.parent
    return d if (d / "config.json").is_file() else None


def _select(samples, subjects: str, run_dir: Path | None):
    if subjects == "all":
        return samples
    if subjects == "val":
        if run_dir is None or not (run_dir / "split.json").is_file():
            raise datasets.DataError(
                "--subjects val needs a run folder with split.json next to the model; "
                "pass --subjects all or a list like 1,5,7")
        wanted = set(json.loads((run_dir / "split.json").read_text())["val_subjects"])
    else:
        wanted = {s.strip() for s in subjects.split(",") if s.strip()}
    chosen = [s for s in samples if s.subject in wanted]
    if not chosen:
        raise datasets.DataError(f"no frames of subjects {sorted(wanted)[:5]} in the data; "
                                 f"check --subjects")
    return chosen


def _load_runner(model_path: Path, input_hw):
    """(predict(x_uint8, pre_cfg) -> (prob, presence), input_hw)."""
    if model_path.suffix in (".tflite", ".onnx"):
        try:
            from edge.backends import open_backend
        except ImportError as e:
            raise ModelError(f"cannot evaluate {model_path}: edge.backends is missing") from e
        backend = open_backend(str(model_path))
        hw = tuple(input_hw or backend.input_hw)
        return (lambda x, pre: predict_backend(backend, x, pre)), hw
    from train.loop import load_keras_model  # TensorFlow only when needed

    model = load_keras_model(model_path)
    hw = tuple(input_hw or tuple(model.input_shape[1:3]))
    from train.data import normalized_inputs

    return (lambda x, pre: predict_keras(model, normalized_inputs(x, pre))), hw


def evaluate(cfg: EvalConfig) -> dict:
    """Score a model on frames; writes out/metrics.json and out/overlays.png; returns metrics."""
    model_path = Path(cfg.model)
    run_dir = _run_dir_of(model_path)
    run_cfg = json.loads((run_dir / "config.json").read_text()) if run_dir else {}
    if model_path.is_dir():
        model_path = model_path / "model.keras"
    if not model_path.exists():
        raise ModelError(f"model {model_path} does not exist; pass RUN/model.keras or a .tflite")
    data = cfg.data or run_cfg.get("data")
    if not data:
        raise datasets.DataError("pass --data: the model has no run folder saying which data")
    nerve_class = cfg.nerve_class or run_cfg.get("nerve_class", 1)
    layout = cfg.layout or (run_cfg.get("layout") if not cfg.data else None)
    samples = datasets.find_samples(data, layout, nerve_class, cfg.subjects_csv)
    samples = _select(samples, cfg.subjects, run_dir)
    run_fn, hw = _load_runner(model_path, cfg.input_hw or run_cfg.get("input_hw"))
    meta = load_meta(model_path)  # a .tflite/.onnx sidecar; defaults for Keras files
    pre = PreprocessConfig(input_hw=tuple(hw), scale=run_cfg.get("scale", meta.scale),
                           offset=run_cfg.get("offset", meta.offset))
    x, y = datasets.load_arrays(samples, pre, nerve_class)
    t0 = time.time()
    prob, presence = run_fn(x, pre)
    result, dice, pred = score(y, prob, presence, cfg.threshold, cfg.presence_threshold)
    result.update(model=str(model_path), data=str(data), subjects=datasets.subjects_of(samples),
                  threshold=cfg.threshold, input_hw=list(hw),
                  seconds_per_frame=(time.time() - t0) / max(1, len(x)))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "metrics.json", result)
    write_overlays(out / "overlays.png", x, y, pred, dice, [s.stem for s in samples])
    return result
