"""nerve-edge device runtime: frames in, nerve outlined, FPS measured.

Imports only numpy, OpenCV and one interpreter (LiteRT / tflite-runtime / ONNX Runtime);
never TensorFlow, train/ or convert/.
"""

__version__ = "0.1.0"
