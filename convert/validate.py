"""Step 4: the gate. Every exported model runs on the validation subjects' frames as the model
object the device runs (edge.model.SegModel: edge's backends, the resolved settings, one
post-processing path), and is scored against the float Keras model the same way.

Three checks, any one fails the gate:
  * accuracy: per-image Dice of each int8 variant may drop at most ``max_dice_drop`` below
    the SOURCE float model (the model the user trained, before pruning); for a multi-class
    model (CLASSES.md), the drop of EACH class's per-image Dice (the same evaluator, per class);
  * floor: per-image Dice of each int8 variant must reach ``min_dice`` (absolute; a
    multi-class model: the mean over its classes). The relative rule alone lets a model that
    never learned pass (a 1-epoch fine-tune at Dice 0.056 converts with no drop at all).
    ``allow_low_dice`` turns this failure into a warning the report and sidecars record;
  * false positives (only with ``max_fp_rate``, off by default): the share of the held-out
    frames without a nerve on which an int8 variant outlines one may not exceed it (for a
    multi-class model: each class's);
  * fidelity: the mean absolute probability difference of any variant against the Keras
    model it was converted from must stay under ``max_drift`` (catches a broken
    conversion even where Dice happens to survive).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from edge.model.evaluate import Evaluation, LabelledFrames, score
from edge.model.postprocess import PostprocessConfig

DEFAULT_MAX_DICE_DROP = 0.01  # per-image Dice, absolute
DEFAULT_MAX_DRIFT = 0.05  # mean |p_variant - p_keras| over all pixels; int8 is ~0.005
# Per-image Dice floor of the int8 model on the held-out frames: a model that overlaps the
# nerve by less than half per image is not safe to ship (the shipped default: 0.78).
DEFAULT_MIN_DICE = 0.5
ALLOW_LOW_DICE_FLAG = "--allow-low-dice"
INT8_VARIANTS = ("int8", "int8-float-io", "web")  # the Dice gate applies to these


@dataclass(frozen=True)
class GateConfig:
    """max_dice_drop: allowed per-image Dice drop of int8 variants vs the source float model.
    max_drift: allowed mean abs probability difference of any variant vs its Keras model.
    dice_gated: variants the Dice rules apply to.
    min_dice: floor on their per-image Dice (0 = off). allow_low_dice: below the floor is a
    warning (recorded), not a failure. max_fp_rate: ceiling on their false-positive rate on
    empty frames (None = off)."""

    max_dice_drop: float = DEFAULT_MAX_DICE_DROP
    max_drift: float = DEFAULT_MAX_DRIFT
    dice_gated: tuple[str, ...] = INT8_VARIANTS
    min_dice: float = DEFAULT_MIN_DICE
    allow_low_dice: bool = False
    max_fp_rate: float | None = None


@dataclass
class GateResult:
    """rows: variant name -> metrics dict; failures: one line per broken rule; warnings:
    the Dice floor's line when it was allowed (--allow-low-dice)."""

    rows: dict[str, dict] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

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
        if name in gate.dice_gated:
            failures += _dice_failures(name, row, gate.max_dice_drop)
            failures += fp_failures(name, row, gate.max_fp_rate)
        if row["drift_mean"] > gate.max_drift:
            failures.append(f"{name}: mean prob drift {row['drift_mean']:.4f} > "
                            f"--max-drift {gate.max_drift} (more calibration frames, "
                            f"--calib-frames, can lower it; --max-drift "
                            f"{_round_up(row['drift_mean'])} accepts it)")
    return failures


def floor_rule(rows: dict[str, dict], gate: GateConfig) -> list[str]:
    """One line when an int8 variant's per-image Dice is under gate.min_dice (empty = fine):
    the lowest variant's Dice, the floor, what it means and the fix (under allow_low_dice:
    that it was written anyway)."""
    low = {name: row for name, row in rows.items() if row.get("role") == "export"
           and name in gate.dice_gated and row["per_image_dice"] < gate.min_dice}
    if not low:
        return []
    name = min(low, key=lambda n: low[n]["per_image_dice"])
    row = low[name]
    names = ", ".join(low)
    frames = f" on {row['n_images']} held-out frames" if row.get("n_images") else ""
    fix = (f"written anyway ({ALLOW_LOW_DICE_FLAG}), recorded in the report and sidecars"
           if gate.allow_low_dice else f"train longer or on more frames, or pass "
           f"{ALLOW_LOW_DICE_FLAG} to write it anyway (recorded in the report and sidecars)")
    return [f"{names}: per-image Dice {row['per_image_dice']:.4f}{frames} is below the floor "
            f"--min-dice {gate.min_dice:g} (the model overlaps the nerve by less than that per "
            f"image: not safe to ship); {fix}"]


def apply_gate(rows: dict[str, dict], gate: GateConfig) -> GateResult:
    """The gate's verdict on the scored rows: relative and drift rules, then the floor (a
    failure, or a warning under allow_low_dice)."""
    failures, floor = gate_rules(rows, gate), floor_rule(rows, gate)
    if gate.allow_low_dice:
        return GateResult(rows, failures, floor)
    return GateResult(rows, failures + floor)


def _dice_failures(name: str, row: dict, max_drop: float) -> list[str]:
    """The whole model's drop, or each class's drop for a multi-class row."""
    drops = {f"{c} ": m["dice_drop"] for c, m in row.get("classes", {}).items()
             if m.get("dice_drop") is not None} or {"": row["dice_drop"]}
    return [f"{name}: {c}per-image Dice drop {d:.4f} > --max-dice-drop {max_drop} (more "
            f"calibration frames, --calib-frames, can shrink it; --max-dice-drop "
            f"{_round_up(d)} accepts it)" for c, d in drops.items() if d > max_drop]


def fp_rates(row: dict) -> dict[str, tuple[float, int]]:
    """Label -> (false-positive rate, empty frames) of a row: the nerve's, or each class's
    (classes with no empty frame are left out)."""
    if row.get("classes"):
        return {f"{c} ": (m["false_positive_rate"], m["n_absent"])
                for c, m in row["classes"].items() if m.get("false_positive_rate") is not None}
    rate = row.get("false_positive_rate")
    return {} if rate is None else {"": (rate, row["n_empty_truth"])}


def fp_failures(name: str, row: dict, max_rate: float | None) -> list[str]:
    """One line per rate above --max-fp-rate: the measured rate, the frames, the way out."""
    if max_rate is None:
        return []
    return [f"{name}: {c}false-positive rate {r:.4f} ({round(r * n)} of {n} held-out frames "
            f"without a nerve outlined) > --max-fp-rate {max_rate:g} (raise --min-area or "
            f"--threshold, or fine-tune with more labelled empty frames)"
            for c, (r, n) in fp_rates(row).items() if r > max_rate]


def _round_up(value: float) -> str:
    """A flag value just above ``value``, as a user would type it (0.0412 -> 0.05)."""
    for step in (0.005, 0.01, 0.05, 0.1):
        if value < 10 * step:
            return f"{(math.floor(round(value / step, 9)) + 1) * step:.3g}"
    return f"{math.floor(value) + 1}"


def _row(metrics: dict, ref_dice: float, role: str, post: PostprocessConfig, **more) -> dict:
    return {"role": role, **metrics, "dice_drop": ref_dice - metrics["per_image_dice"],
            "threshold": post.threshold, "min_area": post.min_area, **more}


def validate(source, converted, exports: dict[str, object], frames: LabelledFrames,
             gate: GateConfig = GateConfig()) -> GateResult:
    """Score the source float model, the converted float model (pruned, when pruning ran)
    and every exported model on ``frames`` with edge.model.evaluate.score; apply the gate.

    Every model is an edge.model.SegModel with its own resolved settings (train.modelio:
    the Keras models with the run's, each export with its sidecar's or the run's).
    source: the model the user trained: the Dice reference. converted: the model the exports
    came from (the drift reference); may be ``source`` itself. Labels (N, H, W) are the
    nerve's (the nerve headline); (N, H, W, C) labels, one channel per class (CLASSES.md),
    score and gate each class.
    """
    if len(frames) == 0:
        raise ValueError("no validation frames; pass --data with the validation subjects")
    per_class = frames.labels.ndim == 4  # what the labels hold, not a second scorer
    row = _class_row if per_class else _nerve_row
    ref = score(source, frames, keep_prob=True)
    rows = {"keras-float": row(ref, ref, "reference", source, drift_mean=0.0, drift_max=0.0)}
    conv = ref
    if converted is not source:
        conv = score(converted, frames, keep_prob=True)
        rows["keras-pruned"] = row(conv, ref, "reference", converted, **drift(conv, ref))
    for name, model in exports.items():
        ev = score(model, frames, keep_prob=True)
        more = {} if per_class else {"dice_drop_vs_converted": conv.metrics["per_image_dice"]
                                     - ev.metrics["per_image_dice"]}
        rows[name] = row(ev, ref, "export", model, **drift(ev, conv), **more)
    return apply_gate(rows, gate)


def _nerve_row(ev: Evaluation, ref: Evaluation, role: str, model, **more) -> dict:
    return _row(ev.metrics, ref.metrics["per_image_dice"], role, model.settings.post, **more)


# ---------------------------------------------------------------- per class (CLASSES.md)


def _class_row(ev: Evaluation, ref: Evaluation, role: str, model, **more) -> dict:
    """A variant's row: per class its figures and Dice drop vs the reference; the headline
    per_image_dice / pooled_dice are the means over classes, dice_drop the largest drop."""
    classes = {}
    for name, m in ev.classes.items():
        r, d = ref.classes[name]["per_image_dice"], m["per_image_dice"]
        classes[name] = {**m, "dice_drop": None if r is None or d is None else r - d}
    dices = [m["per_image_dice"] for m in classes.values() if m["per_image_dice"] is not None]
    drops = [m["dice_drop"] for m in classes.values() if m["dice_drop"] is not None]
    post = model.settings.post
    return {"role": role, "classes": classes,
            "per_image_dice": float(np.mean(dices)) if dices else 1.0,
            "pooled_dice": float(np.mean([m["pooled_dice"] for m in classes.values()])),
            "dice_drop": max(drops) if drops else 0.0, "threshold": post.threshold,
            "min_area": post.min_area, **more}


def results_table(rows: dict[str, dict]) -> str:
    """Fixed-width text table of the gate's figures."""
    lines = [f"{'variant':16s} {'dice/img':>9s} {'pooled':>8s} {'drop':>8s} {'drift':>8s} "
             f"{'fp rate':>8s}"]
    for name, r in rows.items():
        fp = r.get("false_positive_rate")
        lines.append(f"{name:16s} {r['per_image_dice']:9.4f} {r['pooled_dice']:8.4f} "
                     f"{r['dice_drop']:8.4f} {r['drift_mean']:8.4f} "
                     f"{'-' if fp is None else format(fp, '.4f'):>8s}")
        for c, m in r.get("classes", {}).items():
            d, drop, fp = m["per_image_dice"], m["dice_drop"], m.get("false_positive_rate")
            lines.append(f"  {c:14s} {d if d is not None else float('nan'):9.4f} "
                         f"{m['pooled_dice']:8.4f} "
                         f"{drop if drop is not None else float('nan'):8.4f} {'':8s} "
                         f"{'-' if fp is None else format(fp, '.4f'):>8s}")
    return "\n".join(lines)
