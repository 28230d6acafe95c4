"""Step 4: the gate. Every exported model runs on the validation subjects' frames through
edge's own backends and post-processing (the code the device runs), and is scored against
the float Keras model through the same post-processing.

Two checks, either one fails the gate:
  * accuracy: per-image Dice of each int8 variant may drop at most ``max_dice_drop`` below
    the SOURCE float model (the model the user trained, before pruning);
  * fidelity: the mean absolute probability difference of any variant against the Keras
    model it was converted from must stay under ``max_drift`` (catches a broken
    conversion even where Dice happens to survive).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.postprocess import PostprocessConfig, binarize, split_outputs

DEFAULT_MAX_DICE_DROP = 0.01  # per-image Dice, absolute
DEFAULT_MAX_DRIFT = 0.05  # mean |p_variant - p_keras| over all pixels; int8 is ~0.005
INT8_VARIANTS = ("int8", "int8-float-io", "web")  # the Dice gate applies to these
PREDICT_BATCH = 32  # frames per Keras forward pass


@dataclass(frozen=True)
class GateConfig:
    """max_dice_drop: allowed per-image Dice drop of int8 variants vs the source float model.
    max_drift: allowed mean abs probability difference of any variant vs its Keras model.
    dice_gated: variants the Dice rule applies to."""

    max_dice_drop: float = DEFAULT_MAX_DICE_DROP
    max_drift: float = DEFAULT_MAX_DRIFT
    dice_gated: tuple[str, ...] = INT8_VARIANTS


@dataclass
class Predictions:
    """prob (N,H,W) float32 mask probabilities, presence (N,) or None."""

    prob: np.ndarray
    presence: np.ndarray | None = None


@dataclass
class GateResult:
    """rows: variant name -> metrics dict; failures: one line per broken rule."""

    rows: dict[str, dict] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def _collect(per_frame: list[list[np.ndarray]]) -> Predictions:
    probs, pres = [], []
    for outs in per_frame:
        prob, presence = split_outputs(outs)
        probs.append(prob)
        pres.append(presence)
    has_presence = bool(pres) and all(p is not None for p in pres)
    return Predictions(np.stack(probs), np.asarray(pres, np.float32) if has_presence else None)


def keras_predictions(model, x: np.ndarray, batch: int = PREDICT_BATCH) -> Predictions:
    """The float Keras model on x (N,H,W,C), split like a backend's outputs."""
    per_frame = []
    for i in range(0, len(x), batch):
        out = model(x[i : i + batch], training=False)
        outs = [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]
        per_frame += [[o[j : j + 1] for o in outs] for j in range(len(outs[0]))]
    return _collect(per_frame)


def backend_predictions(model_path: str | Path, x: np.ndarray) -> Predictions:
    """An exported model through edge.backends, one (1,H,W,C) frame at a time (as on device)."""
    from edge.backends import open_backend

    backend = open_backend(model_path)
    return _collect([backend.run(x[i : i + 1]) for i in range(len(x))])


def masks(pred: Predictions, post: PostprocessConfig) -> np.ndarray:
    """uint8 0/1 (N,H,W) masks exactly as edge's Postprocessor decides (before resizing)."""
    out = np.stack([binarize(p, post) for p in pred.prob])
    if pred.presence is not None:
        out[pred.presence < post.presence_threshold] = 0
    return out


def score(y: np.ndarray, pred: Predictions, post: PostprocessConfig) -> dict:
    """train.metrics.summarize of the post-processed masks against labels y (N,H,W)."""
    from train.metrics import summarize

    return summarize(y, masks(pred, post))


def drift(pred: Predictions, ref: Predictions) -> dict:
    diff = np.abs(pred.prob - ref.prob)
    return {"drift_mean": float(diff.mean()), "drift_max": float(diff.max())}


def gate_rules(rows: dict[str, dict], gate: GateConfig) -> list[str]:
    """One failure line per broken rule (empty = pass)."""
    failures = []
    for name, row in rows.items():
        if row.get("role") != "export":
            continue
        if name in gate.dice_gated and row["dice_drop"] > gate.max_dice_drop:
            failures.append(f"{name}: per-image Dice drop {row['dice_drop']:.4f} > "
                            f"--max-dice-drop {gate.max_dice_drop}")
        if row["drift_mean"] > gate.max_drift:
            failures.append(f"{name}: mean prob drift {row['drift_mean']:.4f} > "
                            f"--max-drift {gate.max_drift}")
    return failures


def _row(metrics: dict, ref_dice: float, role: str, **more) -> dict:
    return {"role": role, **metrics, "dice_drop": ref_dice - metrics["per_image_dice"], **more}


def validate(source_model, converted_model, exports: dict[str, Path], x: np.ndarray,
             y: np.ndarray, post: PostprocessConfig, gate: GateConfig = GateConfig()
             ) -> GateResult:
    """Score the source float model, the converted float model (pruned, when pruning ran)
    and every exported file on (x, y); apply the gate rules.

    source_model: the model the user trained (the Dice reference).
    converted_model: the Keras model the exports came from (the drift reference); may be
    the same object as source_model.
    """
    if len(x) == 0:
        raise ValueError("no validation frames; pass --data with the validation subjects")
    ref = keras_predictions(source_model, x)
    ref_metrics = score(y, ref, post)
    ref_dice = ref_metrics["per_image_dice"]
    rows = {"keras-float": _row(ref_metrics, ref_dice, "reference", drift_mean=0.0,
                                drift_max=0.0)}
    conv = ref
    if converted_model is not source_model:
        conv = keras_predictions(converted_model, x)
        rows["keras-pruned"] = _row(score(y, conv, post), ref_dice, "reference",
                                    **drift(conv, ref))
    for name, path in exports.items():
        pred = backend_predictions(path, x)
        rows[name] = _row(score(y, pred, post), ref_dice, "export", **drift(pred, conv))
        rows[name]["dice_drop_vs_converted"] = (
            rows["keras-pruned" if "keras-pruned" in rows else "keras-float"]["per_image_dice"]
            - rows[name]["per_image_dice"])
    return GateResult(rows, gate_rules(rows, gate))


def results_table(rows: dict[str, dict]) -> str:
    """Fixed-width text table of the gate's figures."""
    lines = [f"{'variant':16s} {'dice/img':>9s} {'pooled':>8s} {'drop':>8s} {'drift':>8s}"]
    for name, r in rows.items():
        lines.append(f"{name:16s} {r['per_image_dice']:9.4f} {r['pooled_dice']:8.4f} "
                     f"{r['dice_drop']:8.4f} {r['drift_mean']:8.4f}")
    return "\n".join(lines)
