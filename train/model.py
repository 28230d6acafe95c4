"""U-Net builder (tf_keras).

The defaults aim at a Pi-class CPU: a stride-2 stem so the U-Net runs at half the input
resolution (narrow layers at full resolution waste the hardware and most of the budget), skip
connections, batch norm, bilinear resize + conv upsampling (compiles for the Edge TPU, unlike
stride-2 transpose conv), and a final bilinear resize back to the input size so the mask
output always matches the input.

Outputs: ``mask`` (N, H, W, C) sigmoid probabilities (C = num_classes, 1 = the nerve-only
model; each channel independent, CLASSES.md); with ``presence_head`` also
``presence`` (N, 1), a nerve-presence probability from the bottleneck.
"""

from __future__ import annotations

import tf_keras as keras
from tf_keras import layers

UPSAMPLE_MODES = ("bilinear", "transpose")
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
    """
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
    for level in reversed(range(depth)):
        x = _upsample(x, width(level), f"up{level}", upsample)
        x = layers.Concatenate(name=f"cat{level}")([x, skips[level]])
        x = _block(x, width(level), f"dec{level}", separable)
    x = layers.Conv2D(num_classes, 1, name="logits")(x)
    if stem_stride == 2:
        x = layers.UpSampling2D(2, interpolation="bilinear", name="logits_resize")(x)
    mask = layers.Activation("sigmoid", dtype="float32", name="mask")(x)
    outputs = [mask]
    if presence_head:
        if num_classes != 1:
            raise ValueError("the presence head is for nerve-only models; drop "
                             "--presence-head with --classes")
        p = layers.GlobalAveragePooling2D(name="presence_gap")(bottleneck)
        p = layers.Dense(1, activation="sigmoid", name="presence")(p)
        outputs.append(p)
    return keras.Model(inputs, outputs if len(outputs) > 1 else mask, name=name)


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
