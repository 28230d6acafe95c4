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

from edge.evaluate import Evaluation, LabelledFrames, score
from edge.postprocess import PostprocessConfig
from edge.preprocess import PreprocessConfig

DEFAULT_MAX_DICE_DROP = 0.01  # per-image Dice, absolute
DEFAULT_MAX_DRIFT = 0.05  # mean |p_variant - p_keras| over all pixels; int8 is ~0.005
INT8_VARIANTS = ("int8", "int8-float-io", "web")  # the Dice gate applies to these


@dataclass(frozen=True)
class GateConfig:
    """max_dice_drop: allowed per-image Dice drop of int8 variants vs the source float model.
    max_drift: allowed mean abs probability difference of any variant vs its Keras model.
    dice_gated: variants the Dice rule applies to."""

    max_dice_drop: float = DEFAULT_MAX_DICE_DROP
    max_drift: float = DEFAULT_MAX_DRIFT
    dice_gated: tuple[str, ...] = INT8_VARIANTS


@dataclass
class GateResult:
    """rows: variant name -> metrics dict; failures: one line per broken rule."""

    rows: dict[str, dict] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def drift(pred: Evaluation, ref: Evaluation) -> dict:
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


def _row(metrics: dict, ref_dice: float, role: str, post: PostprocessConfig, **more) -> dict:
    return {"role": role, **metrics, "dice_drop": ref_dice - metrics["per_image_dice"],
            "threshold": post.threshold, "min_area": post.min_area, **more}


def validate(source, converted, exports: dict[str, Path], frames: LabelledFrames,
             pre: PreprocessConfig, post: PostprocessConfig, gate: GateConfig = GateConfig(),
             export_post: dict[str, PostprocessConfig] | None = None) -> GateResult:
    """Score the source float model, the converted float model (pruned, when pruning ran)
    and every exported file on ``frames`` with edge.evaluate.score; apply the gate rules.

    source: the model the user trained, as a Backend (train.modelio.KerasBackend): the Dice
    reference. converted: the Backend the exports came from (the drift reference); may be
    ``source`` itself. export_post: per-export post-processing (their sidecars) where it
    differs from ``post``.
    """
    from edge.backends import open_backend

    if len(frames) == 0:
        raise ValueError("no validation frames; pass --data with the validation subjects")
    ref = score(source, frames, pre, post, keep_prob=True)
    ref_dice = ref.metrics["per_image_dice"]
    rows = {"keras-float": _row(ref.metrics, ref_dice, "reference", post, drift_mean=0.0,
                                drift_max=0.0)}
    conv = ref
    if converted is not source:
        conv = score(converted, frames, pre, post, keep_prob=True)
        rows["keras-pruned"] = _row(conv.metrics, ref_dice, "reference", post,
                                    **drift(conv, ref))
    conv_dice = conv.metrics["per_image_dice"]
    for name, path in exports.items():
        p = (export_post or {}).get(name, post)
        ev = score(open_backend(path), frames, pre, p, keep_prob=True)
        rows[name] = _row(ev.metrics, ref_dice, "export", p, **drift(ev, conv),
                          dice_drop_vs_converted=conv_dice - ev.metrics["per_image_dice"])
    return GateResult(rows, gate_rules(rows, gate))


def results_table(rows: dict[str, dict]) -> str:
    """Fixed-width text table of the gate's figures."""
    lines = [f"{'variant':16s} {'dice/img':>9s} {'pooled':>8s} {'drop':>8s} {'drift':>8s}"]
    for name, r in rows.items():
        lines.append(f"{name:16s} {r['per_image_dice']:9.4f} {r['pooled_dice']:8.4f} "
                     f"{r['dice_drop']:8.4f} {r['drift_mean']:8.4f}")
    return "\n".join(lines)
