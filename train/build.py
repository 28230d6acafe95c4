"""The model of a training run: built from the config, initialised (fine-tuning, a
multi-class model from a nerve-only one), frozen in part, compiled with its loss and
learning-rate schedule. train/loop.py calls these inside the distribution strategy's scope.
"""

from __future__ import annotations

import numpy as np
import tf_keras as keras

from edge.errors import ModelError
from edge.log import say
from train.config import TrainConfig
from train.initmodel import init_keras_path
from train.losses import BceDiceLoss, DeepSupervisionLoss, MultiBceDiceLoss, SoftDice
from train.model import HEADS_LAYER, build_unet
from train.modelio import load_keras

# A fresh class channel starts at p = 1% everywhere (logit bias log(0.01 / 0.99)), not 50%:
# a rare structure's channel then starts near its background rate instead of spending the
# first epochs un-learning "everything is vessel" (the RetinaNet prior).
FRESH_CHANNEL_PRIOR = 0.01
FRESH_CHANNEL_BIAS = float(np.log(FRESH_CHANNEL_PRIOR / (1.0 - FRESH_CHANNEL_PRIOR)))
ENCODER_PREFIXES = ("stem", "enc", "pool", "bottleneck")  # layer names frozen by freeze_encoder


def build_model(cfg: TrainConfig):
    kwargs = dict(cfg.model)
    if kwargs.get("preset") == "reference":
        from train.reference import build_reference

        return build_reference(tuple(cfg.input_hw))
    if "preset" in kwargs:
        raise ModelError(f"unknown model preset {kwargs['preset']!r}; use 'reference'")
    try:
        return build_unet(input_hw=tuple(cfg.input_hw), num_classes=len(cfg.class_list),
                          **kwargs)
    except ValueError as e:  # e.g. an input size the depth cannot halve evenly
        raise ModelError(str(e)) from e


def load_init_weights(model, path, nerve_index: int | None = None) -> None:
    """Copy weights from a trained model of the same architecture (fine-tuning); ``path`` is
    what --init-weights takes (the word default, a run folder, a .keras/.h5 file). With
    nerve_index (a multi-class model from a nerve-only one): every layer whose weight shapes
    match is copied, and the C-channel head takes the nerve head as channel nerve_index."""
    p = init_keras_path(path)
    say(f"init: weights from {p}")
    if nerve_index is not None:
        try:
            source = load_keras(p)
        except (ValueError, OSError, ModelError) as e:
            raise ModelError(f"--init-weights {p}: cannot load it ({str(e)[:120]})") from e
        say(init_from_nerve(model, source, nerve_index))
        return
    try:
        if p.suffix == ".h5":
            model.load_weights(str(p))
        else:
            model.set_weights(load_keras(p).get_weights())
    except (ValueError, OSError, ModelError) as e:
        raise ModelError(
            f"--init-weights {path} does not match this model ({str(e)[:120]}); it has no "
            f"sidecar or run config saying its architecture, so pass the same model flags "
            f"(--base-filters, --depth, --arch, ...) as the run that produced it") from e


def init_from_nerve(model, source, nerve_index: int) -> str:
    """Copy source's weights into model layer by layer (by name) where shapes match; the
    1x1 head ``logits`` of C channels gets the source's single nerve channel at nerve_index,
    fresh (random) weights and the FRESH_CHANNEL_PRIOR bias elsewhere. Returns the log
    line."""
    src = {layer.name: layer for layer in source.layers}
    copied, fresh, head_split = 0, [], False
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        theirs = src[layer.name].get_weights() if layer.name in src else None
        if theirs and [w.shape for w in theirs] == [w.shape for w in weights]:
            layer.set_weights(theirs)
            copied += 1
        elif layer.name == "logits" and theirs and theirs[0].shape[-1] == 1:
            kernel, bias = weights
            kernel[..., nerve_index:nerve_index + 1] = theirs[0]
            bias[:] = FRESH_CHANNEL_BIAS
            bias[nerve_index] = theirs[1][0]
            layer.set_weights([kernel, bias])
            copied, head_split = copied + 1, True
        else:
            fresh.append(layer.name)
    if fresh and fresh != ["logits"]:
        raise ModelError(f"--init-weights: layers {fresh[:4]} do not match this model; pass "
                         "the same model flags (--base-filters, --depth, ...) as its run")
    c = model.get_layer("logits").get_weights()[0].shape[-1]
    if not head_split:
        return f"init: copied all {copied} layers (the model already has {c} channels)"
    return (f"init: copied {copied} layers from the nerve-only model; head: channel "
            f"{nerve_index} = its nerve channel, the other {c - 1} channel(s) fresh (bias "
            f"p = {FRESH_CHANNEL_PRIOR})")


def freeze_encoder(model) -> int:
    frozen = 0
    for layer in model.layers:
        if layer.name.startswith(ENCODER_PREFIXES):
            layer.trainable = False
            frozen += 1
    return frozen


def lr_schedule(cfg: TrainConfig, steps: int):
    """Linear warm-up to cfg.lr, then cosine decay to cfg.lr * min_lr_fraction."""
    total = max(1, cfg.epochs * steps)
    warmup = min(int(cfg.warmup_epochs * steps), total // 2)
    start = cfg.lr * cfg.min_lr_fraction if warmup else cfg.lr
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=start, decay_steps=max(1, total - warmup),
        alpha=cfg.min_lr_fraction,  # a fraction of the peak (warmup_target) in tf_keras
        warmup_target=cfg.lr if warmup else None, warmup_steps=warmup)


def compile_model(model, cfg: TrainConfig, steps: int) -> None:
    optimizer = keras.optimizers.Adam(learning_rate=lr_schedule(cfg, steps))
    if HEADS_LAYER in {layer.name for layer in model.layers}:  # U-Net++ deep supervision
        model.compile(optimizer=optimizer,
                      loss=DeepSupervisionLoss(cfg.bce_weight, cfg.dice_weight))
        return
    loss_class = MultiBceDiceLoss if cfg.classes else BceDiceLoss
    mask_loss = loss_class(cfg.bce_weight, cfg.dice_weight)
    if cfg.presence_head:
        model.compile(optimizer=optimizer,
                      loss={"mask": mask_loss, "presence": keras.losses.BinaryCrossentropy()},
                      loss_weights={"mask": 1.0, "presence": cfg.presence_weight},
                      metrics={"mask": [SoftDice()]})
    else:
        model.compile(optimizer=optimizer, loss=mask_loss, metrics=[SoftDice()])
