"""Step 1: magnitude pruning (tensorflow-model-optimization) of a trained tf_keras U-Net.

Only Conv2D / Conv2DTranspose / Dense kernels are wrapped (clone_model with a clone
function); batch norm, resizes and pooling are left alone. Sparsity ramps up with a
PolynomialDecay schedule while the model is fine-tuned on the training frames, then the
wrappers are stripped, leaving a plain Keras model whose kernels hold exact zeros.

Unstructured sparsity does NOT make TFLite/XNNPACK 3x3 convolutions faster: it makes the
compressed (gzip) file smaller. The report says so and claims no speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import train  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow loads)

DEFAULT_SPARSITY = 0.5  # share of zeros in each pruned kernel
DEFAULT_EPOCHS = 2
DEFAULT_BATCH = 16
DEFAULT_LR = 5e-4  # fine-tuning a trained model: a fraction of a typical training rate
MIN_PRUNE_PARAMS = 64  # tiny kernels (1x1 logits, presence head) hold accuracy, not size
RAMP_FRACTION = 0.7  # reach the target after 70% of the steps, fine-tune the rest with it fixed
PRUNE_UPDATES = 10  # mask updates along the ramp (tfmot's default of every 100 steps would
#                     never fire in a 2-epoch fine-tune on a few hundred frames)


@dataclass(frozen=True)
class PruneConfig:
    """target_sparsity: zeros per pruned kernel at the end. epochs/batch_size/learning_rate:
    the fine-tune. min_params: kernels smaller than this are not pruned. seed: shuffling."""

    target_sparsity: float = DEFAULT_SPARSITY
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH
    learning_rate: float = DEFAULT_LR
    min_params: int = MIN_PRUNE_PARAMS
    seed: int = 0


def is_prunable(layer, min_params: int = MIN_PRUNE_PARAMS) -> bool:
    """Conv2D (incl. transpose) and Dense kernels of at least min_params weights."""
    from tf_keras import layers

    if not isinstance(layer, (layers.Conv2D, layers.Dense)):
        return False
    return int(np.prod(layer.kernel.shape)) >= min_params


def schedule_for(n_frames: int, cfg: PruneConfig):
    """PolynomialDecay 0 -> target that ends on a mask-update step (else the last update
    falls short of the target) and leaves the final steps to recover accuracy."""
    import tensorflow_model_optimization as tfmot

    steps = max(1, math.ceil(n_frames / cfg.batch_size)) * max(1, cfg.epochs)
    ramp = max(1, int(steps * RAMP_FRACTION))
    frequency = max(1, ramp // PRUNE_UPDATES)
    end = max(frequency, (ramp // frequency) * frequency)
    return tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=cfg.target_sparsity, begin_step=0,
        end_step=end, frequency=frequency,
    )


def wrap_for_pruning(model, schedule, min_params: int):
    """A copy of model with its prunable layers wrapped for pruning."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    # A plain copy first: the wrappers below reuse the layers they wrap, and pruning must
    # not zero the caller's model (the gate compares against it).
    base = keras.models.clone_model(model)
    base.set_weights(model.get_weights())

    def clone_fn(layer):
        if is_prunable(layer, min_params):
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    return keras.models.clone_model(base, clone_function=clone_fn)


def _targets(model, y: np.ndarray) -> dict[str, np.ndarray]:
    """Fit targets per output: the mask, and nerve presence when the model has that head."""
    y = y.astype(np.float32)
    if y.ndim == 3:
        y = y[..., None]
    out = {}
    for name in model.output_names:
        out[name] = y if name == "mask" or len(model.output_names) == 1 else (
            (y.reshape(len(y), -1).max(axis=1, keepdims=True) > 0).astype(np.float32))
    return out


def mask_loss():
    """The training loss for the mask output (train.losses: BCE + soft Dice per image)."""
    from train.losses import BceDiceLoss

    return BceDiceLoss()


def _losses(model) -> dict:
    return {n: (mask_loss() if n == "mask" or len(model.output_names) == 1
                else "binary_crossentropy") for n in model.output_names}


def prune_model(model, x: np.ndarray, y: np.ndarray, cfg: PruneConfig = PruneConfig()):
    """Prune + fine-tune on (x float32 N,H,W,C, y uint8 N,H,W) and strip. Returns a new model."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    from train.callbacks import StopPoint  # a Ctrl-C/SIGTERM stops the fit after the batch

    if not 0.0 < cfg.target_sparsity < 1.0:
        raise ValueError(f"--prune {cfg.target_sparsity}: sparsity must be in (0, 1), e.g. 0.5")
    if len(x) == 0:
        raise ValueError("no training frames to fine-tune the pruned model on; pass --data")
    tf.keras.utils.set_random_seed(cfg.seed)
    wrapped = wrap_for_pruning(model, schedule_for(len(x), cfg), cfg.min_params)
    wrapped.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=_losses(model))
    wrapped.fit(
        x, _targets(model, y), batch_size=cfg.batch_size, epochs=cfg.epochs, shuffle=True,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), StopPoint()], verbose=2,
    )
    return tfmot.sparsity.keras.strip_pruning(wrapped)


def sparsity_report(model, min_params: int = MIN_PRUNE_PARAMS) -> dict:
    """Per-layer zeros of every conv/dense kernel; ``pruned_sparsity`` over the prunable
    ones (what the target applies to), ``overall_sparsity`` over all kernels."""
    from tf_keras import layers

    rows = []
    for layer in model.layers:
        if not isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.Dense)):
            continue
        kernel = layer.get_weights()[0]
        rows.append({
            "layer": layer.name, "type": type(layer).__name__, "params": int(kernel.size),
            "zeros": int((kernel == 0).sum()), "sparsity": float((kernel == 0).mean()),
            "prunable": is_prunable(layer, min_params),
        })
    return {
        "layers": rows,
        "pruned_sparsity": _ratio(rows, only_prunable=True),
        "overall_sparsity": _ratio(rows, only_prunable=False),
    }


def _ratio(rows: list[dict], only_prunable: bool) -> float:
    chosen = [r for r in rows if r["prunable"] or not only_prunable]
    total = sum(r["params"] for r in chosen)
    return float(sum(r["zeros"] for r in chosen) / total) if total else 0.0


def sparsity_table(report: dict) -> str:
    """The per-layer report as a fixed-width text table."""
    lines = [f"{'layer':28s} {'type':16s} {'params':>8s} {'sparsity':>8s}"]
    for r in report["layers"]:
        mark = "" if r["prunable"] else "  (kept)"
        lines.append(f"{r['layer']:28s} {r['type']:16s} {r['params']:8d} "
                     f"{r['sparsity']:8.3f}{mark}")
    lines.append(f"pruned kernels: {report['pruned_sparsity']:.3f} zeros; all kernels: "
                 f"{report['overall_sparsity']:.3f} (smaller gzip, not faster)")
    return "\n".join(lines)


def prune_file(in_path, out_path, x: np.ndarray, y: np.ndarray,
               cfg: PruneConfig = PruneConfig()) -> dict:
    """Step as path -> path: prune the Keras model at in_path, save to out_path (atomic),
    return the sparsity report."""
    from convert.common import save_keras_atomic
    from train.modelio import load_keras

    pruned = prune_model(load_keras(in_path), x, y, cfg)
    save_keras_atomic(pruned, out_path)
    return sparsity_report(pruned, cfg.min_params)
