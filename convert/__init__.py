"""nerve-edge conversion: Keras U-Net -> pruned int8 TFLite, fp16/fp32 TFLite, ONNX."""

import train  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow loads)
