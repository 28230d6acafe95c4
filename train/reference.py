"""The `reference` preset: the student project's plain encoder-decoder, for side-by-side runs.

What is known (issue 3): an encoder-decoder WITHOUT skip connections, 231k parameters at a
128x128 input, trained with BCE only, flip-only augmentation, on a random frame-level split
(which inflated its reported Dice of 0.42). Its source was not found (searched public code and
pages), so the exact layers are a reconstruction (see docs/train.md): the simplest Keras
student-style network whose parameter count is 231k:

  encoder  Conv3x3(32)-ReLU, MaxPool, Conv3x3(64)-ReLU, MaxPool, Conv3x3(128)-ReLU
  decoder  UpSample, 2 x Conv3x3(64)-ReLU, UpSample, 2 x Conv3x3(32)-ReLU, Conv1x1(1)-sigmoid

= 231,137 parameters (no batch norm; conv parameters do not depend on the input size).
Input sizes must be divisible by 4. Layer names start with "enc" on the encoder side so
--freeze-encoder works here too.
"""

from __future__ import annotations

import tf_keras as keras
from tf_keras import layers

REFERENCE_PARAMS = 231_137  # the count the reconstruction was fitted to ("231k")
ENCODER_FILTERS = (32, 64, 128)
DECODER_FILTERS = (64, 32)
DOWNSAMPLE = 4  # two 2x poolings
# The student's training recipe, as edge-train flags (the split stays by subject: honest).
REFERENCE_RECIPE = {"input_hw": (128, 128), "bce_weight": 1.0, "dice_weight": 0.0,
                    "augment": "flip"}


def build_reference(input_hw=(128, 128), in_channels: int = 1, name: str = "reference"):
    """The student encoder-decoder (no skips); output ``mask`` (N, H, W, 1) sigmoid."""
    h, w = input_hw
    if h % DOWNSAMPLE or w % DOWNSAMPLE:
        raise ValueError(f"input size {h}x{w} must be divisible by {DOWNSAMPLE} for the "
                         f"reference preset, e.g. {h - h % DOWNSAMPLE}x{w - w % DOWNSAMPLE}")
    inputs = keras.Input((h, w, in_channels), name="image")
    x = inputs
    for i, f in enumerate(ENCODER_FILTERS):
        if i:
            x = layers.MaxPooling2D(2, name=f"enc{i}_pool")(x)
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"enc{i}_conv")(x)
    for i, f in enumerate(DECODER_FILTERS):
        x = layers.UpSampling2D(2, name=f"dec{i}_up")(x)
        for j in range(2):
            x = layers.Conv2D(f, 3, padding="same", activation="relu",
                              name=f"dec{i}_conv{j}")(x)
    x = layers.Conv2D(1, 1, name="logits")(x)
    mask = layers.Activation("sigmoid", dtype="float32", name="mask")(x)
    return keras.Model(inputs, mask, name=name)
