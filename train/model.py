"""U-Net builder (tf_keras).

The defaults aim at a Pi-class CPU: a stride-2 stem so the U-Net runs at half the input
resolution (narrow layers at full resolution waste the hardware and most of the budget), skip
connections, batch norm, bilinear resize + conv upsampling (compiles for the Edge TPU, unlike
stride-2 transpose conv), and a final bilinear resize back to the input size so the mask
output always matches the input.

Architectures (``arch``), all at the same stem / widths / resize-based upsampling:

- ``unet``: the plain U-Net.
- ``attention``: Attention U-Net (Oktay et al. 2018): each skip is multiplied by a one-channel
  gate computed from the skip and the coarser decoder signal (1x1 convs, add, ReLU, 1x1 conv,
  sigmoid, bilinear resize), so the decoder sees the skip only where the gate is open.
- ``unetpp``: U-Net++ (Zhou et al. 2018): nested dense skips, node X[i][j] = block(concat(
  X[i][0..j-1], up(X[i+1][j-1]))), and one mask head per top-row node X[0][1..depth]. With
  deep supervision (the default) every head is trained (the fit model outputs the heads side
  by side, ``mask_heads``); ``inference_model`` gives the device model: ``mask`` = the mean of
  the heads, or of the first K only (``select_heads``: the deeper nested nodes are then no
  longer computed, fewer MACs).

Outputs: ``mask`` (N, H, W, C) sigmoid probabilities (C = num_classes, 1 = the nerve-only
model; each channel independent, CLASSES.md); with ``presence_head`` also
``presence`` (N, 1), a nerve-presence probability from the bottleneck.
"""

from __future__ import annotations

import tf_keras as keras
from tf_keras import layers

UPSAMPLE_MODES = ("bilinear", "transpose")
ARCHS = ("unet", "attention", "unetpp")
HEADS_LAYER = "mask_heads"  # U-Net++ fit model: the heads' probabilities side by side
BN_MOMENTUM = 0.9  # faster-moving BN statistics: short trainings on small data


def _conv_bn_relu(x, filters, name, separable=False, stride=1):
    if separable:
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False,
                                   name=f"{name}_dw")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_dw_bn")(x)
        x = layers.ReLU(name=f"{name}_dw_relu")(x)
        x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    else:
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                          name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _block(x, filters, name, separable, convs=2, dropout=0.0):
    for i in range(convs):
        x = _conv_bn_relu(x, filters, f"{name}_{i}", separable=separable and i > 0)
    if dropout > 0:
        x = layers.SpatialDropout2D(dropout, name=f"{name}_drop")(x)
    return x


def _upsample(x, filters, name, mode):
    if mode == "transpose":
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", use_bias=False,
                                   name=f"{name}_tconv")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x)
    return layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_resize")(x)


def _attention_gate(skip, gating, name):
    """Skip (H, W, C) times a (H, W, 1) gate from the skip and the coarser signal gating
    (H/2, W/2, Cg): additive attention at the coarse resolution, resized back."""
    inter = max(4, skip.shape[-1] // 2)
    theta = layers.Conv2D(inter, 1, strides=2, use_bias=False, name=f"{name}_theta")(skip)
    phi = layers.Conv2D(inter, 1, use_bias=True, name=f"{name}_phi")(gating)
    f = layers.ReLU(name=f"{name}_relu")(layers.Add(name=f"{name}_add")([theta, phi]))
    psi = layers.Conv2D(1, 1, activation="sigmoid", name=f"{name}_psi")(f)
    alpha = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_resize")(psi)
    return layers.Multiply(name=f"{name}_apply")([skip, alpha])


def _head(x, num_classes, stem_stride, name, out_name=None):
    """1x1 conv ``name``, resized back to the input after a stride-2 stem, sigmoid
    ``out_name`` (default NAME_sigmoid)."""
    x = layers.Conv2D(num_classes, 1, name=name)(x)
    if stem_stride == 2:
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_resize")(x)
    return layers.Activation("sigmoid", dtype="float32", name=out_name or f"{name}_sigmoid")(x)


def check_input_hw(input_hw, depth, stem_stride):
    factor = (2 ** depth) * stem_stride
    h, w = input_hw
    if h % factor or w % factor:
        raise ValueError(
            f"input size {h}x{w} must be divisible by {factor} "
            f"(2**depth={2 ** depth} x stem stride {stem_stride}); "
            f"e.g. {h - h % factor}x{w - w % factor}, or lower --depth"
        )


def build_unet(
    input_hw=(128, 176),
    base_filters=16,
    depth=3,
    upsample="bilinear",
    dropout=0.0,
    presence_head=False,
    stem_stride=2,
    separable=False,
    in_channels=1,
    max_filters=256,
    num_classes=1,
    arch="unet",
    deep_supervision=True,
    name="unet",
):
    """Build a U-Net.

    input_hw: (H, W); must be divisible by 2**depth * stem_stride.
    base_filters: channels at the first level; doubled per level, capped at max_filters.
    depth: number of 2x down-sampling steps inside the U-Net (after the stem).
    upsample: "bilinear" (resize + conv, Edge-TPU friendly) or "transpose" (stride-2 conv).
    dropout: SpatialDropout2D rate in the bottleneck (0 = off).
    presence_head: add a ``presence`` output (nerve present?) from the bottleneck.
    stem_stride: 1 = classic full-resolution U-Net; 2 = stride-2 stem, U-Net at half
        resolution, mask resized back to input size (about 4x fewer MACs).
    separable: depthwise-separable second conv in each block (fewer MACs).
    num_classes: mask channels, one sigmoid per class (the head ``logits`` is a 1x1 conv).
    arch: "unet", "attention" (gated skips) or "unetpp" (nested skips); see the module doc.
    deep_supervision: U-Net++ only: train every head (the returned model is then the fit
        model; ``inference_model`` turns it into the device model). Off: the last head only.
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
    if stem_stride not in (1, 2):
        raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
    check_input_hw(input_hw, depth, stem_stride)
    h, w = input_hw
    inputs = keras.Input((h, w, in_channels), name="image")

    def width(level):
        return min(base_filters * 2**level, max_filters)

    x = inputs
    if stem_stride == 2:
        x = _conv_bn_relu(x, base_filters, "stem", stride=2)
    skips = []
    for level in range(depth):
        x = _block(x, width(level), f"enc{level}", separable, convs=1 if level == 0 and
                   stem_stride == 2 else 2)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = _block(x, width(depth), "bottleneck", separable, dropout=dropout)
    bottleneck = x
    if arch == "unetpp":
        if presence_head and deep_supervision:
            raise ValueError("U-Net++ with deep supervision has no presence head; drop "
                             "--presence-head or pass --no-deep-supervision")
        heads = _nested_decoder(skips, x, depth, width, separable, upsample, num_classes,
                                stem_stride)
        if deep_supervision and len(heads) > 1:
            mask = layers.Concatenate(name=HEADS_LAYER)(heads)
        else:
            mask = layers.Activation("linear", dtype="float32", name="mask")(heads[-1])
    else:
        for level in reversed(range(depth)):
            gate_signal = x
            x = _upsample(x, width(level), f"up{level}", upsample)
            skip = skips[level]
            if arch == "attention":
                skip = _attention_gate(skip, gate_signal, f"att{level}")
            x = layers.Concatenate(name=f"cat{level}")([x, skip])
            x = _block(x, width(level), f"dec{level}", separable)
        mask = _head(x, num_classes, stem_stride, "logits", out_name="mask")
    outputs = [mask]
    if presence_head:
        if num_classes != 1:
            raise ValueError("the presence head is for nerve-only models; drop "
                             "--presence-head with --classes")
        p = layers.GlobalAveragePooling2D(name="presence_gap")(bottleneck)
        p = layers.Dense(1, activation="sigmoid", name="presence")(p)
        outputs.append(p)
    return keras.Model(inputs, outputs if len(outputs) > 1 else mask, name=name)


def _nested_decoder(skips, bottom, depth, width, separable, upsample, num_classes,
                    stem_stride):
    """U-Net++ nodes X[i][j] (i = level, j = column); X[i][0] are the encoder outputs and
    X[depth][0] the bottleneck. Returns the sigmoid heads on X[0][1..depth]."""
    grid = {(i, 0): s for i, s in enumerate(skips)}
    grid[(depth, 0)] = bottom
    for j in range(1, depth + 1):
        for i in range(depth - j + 1):
            up = _upsample(grid[(i + 1, j - 1)], width(i), f"up{i}_{j}", upsample)
            parts = [grid[(i, k)] for k in range(j)] + [up]
            x = layers.Concatenate(name=f"cat{i}_{j}")(parts)
            grid[(i, j)] = _block(x, width(i), f"dec{i}_{j}", separable)
    return [_head(grid[(0, j)], num_classes, stem_stride, f"logits{j}")
            for j in range(1, depth + 1)]


def heads_of(model) -> list:
    """The per-head probability tensors of a U-Net++ model (fit or device model), or []."""
    names = {layer.name for layer in model.layers}
    if HEADS_LAYER in names:
        inputs = model.get_layer(HEADS_LAYER).input
    elif "mask" in names and isinstance(model.get_layer("mask").input, list):
        inputs = model.get_layer("mask").input
    else:
        return []
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


def select_heads(model, keep: int | None = None):
    """The device model of a fit model: ``mask`` = the mean of the first ``keep`` U-Net++
    heads (all when None). Layers past those heads drop out of the graph (fewer MACs). Any
    other model comes back unchanged (keep must then be None)."""
    heads = heads_of(model)
    if not heads:
        if keep is not None:
            raise ValueError(f"{model.name}: not a U-Net++ model with several heads; "
                             "--heads applies to U-Net++ only")
        return model
    keep = len(heads) if keep is None else keep
    if not 1 <= keep <= len(heads):
        raise ValueError(f"--heads {keep}: this U-Net++ has heads 1..{len(heads)}")
    chosen = heads[:keep]
    if len(chosen) == 1:
        mask = layers.Activation("linear", dtype="float32", name="mask")(chosen[0])
    else:
        mask = layers.Average(dtype="float32", name="mask")(chosen)
    return keras.Model(model.input, mask, name=model.name)


def inference_model(model):
    """The model a run saves and the device runs: the U-Net++ fit model with its heads
    averaged into ``mask``; every other model as it is."""
    if HEADS_LAYER in {layer.name for layer in model.layers}:
        return select_heads(model)
    return model


def count_macs(model) -> int:
    """Multiply-accumulates per frame of conv/dense layers (batch 1). Resizes, BN, pooling and
    activations are not counted: they are a small share and backend-dependent."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.Dense)):
            out = layer.output_shape
            spatial = 1
            for d in out[1:-1]:
                spatial *= d
            kernel = layer.get_weights()[0].shape
            if isinstance(layer, layers.DepthwiseConv2D):
                per_px = kernel[0] * kernel[1] * kernel[2] * kernel[3]
            elif isinstance(layer, layers.Conv2DTranspose):
                # kernel (kh, kw, out, in): each input pixel scatters kh*kw*out*in MACs
                in_spatial = 1
                for d in layer.input_shape[1:-1]:
                    in_spatial *= d
                total += in_spatial * kernel[0] * kernel[1] * kernel[2] * kernel[3]
                continue
            elif isinstance(layer, layers.Dense):
                per_px = kernel[0] * kernel[1]
            else:
                per_px = kernel[0] * kernel[1] * kernel[2] * kernel[3]
            total += spatial * per_px
    return int(total)
