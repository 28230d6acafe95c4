"""The model room: a model file opened into one object (backend + resolved settings + classes).

    from edge.model import SegModel, open_model
    model = open_model("edge/models/nerve_default_int8.tflite")
    result = model(frame)

Pre-processing, the backends, the sidecar, the settings resolver, post-processing and the one
evaluator live here. Light: the runtime (LiteRT / ONNX Runtime) loads only when a model opens.
"""

from edge.model.segmodel import SegModel, open_model

__all__ = ["SegModel", "open_model"]
