"""Model interpreters: one small class per format, chosen by file suffix from a table.

    backend = open_backend("edge/models/nerve_fixture_int8.tflite", threads=1)
    outputs = backend.run(x)        # x: (1, H, W, C) float32 from edge.model.preprocess

``run`` always takes the float model input (in the units of the model's normalization) and
returns float32 outputs: int8/uint8 models are quantized and dequantized here with the
model's OWN scale/zero-point (feeding raw pixels to an int8 model is the classic bug).

Output order is stable: outputs sorted by tensor name (TFLite: "StatefulPartitionedCall:0",
":1", ...; ONNX: "mask", "presence"). Callers should not rely on position anyway:
``edge.model.postprocess.split_outputs`` tells the mask (4-D) from the presence score (2-D).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np

from edge.deps import native_stderr_without, require
from edge.errors import ModelError
from edge.fsutil import MODEL_FORMATS
from edge.model.metadata import load_meta
from edge.model.preprocess import DEFAULT_INPUT_HW

# Interpreter modules in order of preference. tensorflow.lite is the last resort: it drags
# in all of TensorFlow, which the device must not need (DESIGN principle 1).
TFLITE_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite")
DEFAULT_PROVIDERS = ("CPUExecutionProvider",)
SUPPORTED_CHANNELS = (1, 3)
GRAY8_SCALE = 1.0 / 255.0  # int8 input scale that makes quantization exactly pixel - 128
GRAY8_ZERO_POINT = -128
SCALE_RTOL = 1e-4  # relative tolerance when comparing quantization scales
NATIVE_INFO_PREFIX = "INFO: "  # LiteRT's C++ INFO lines, e.g. "Created ... XNNPACK delegate"
INT_RANGES = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255)}


def _shape_text(shape) -> str:
    return "x".join("?" if d is None or isinstance(d, str) or d < 0 else str(d) for d in shape)


def check_input_shape(path: Path, shape, dtype_name: str) -> tuple[tuple[int, int], int]:
    """Validate an NHWC (1, H, W, C) input with C in {1, 3}; return ((H, W), C).

    Dynamic dims (None, -1, symbolic) are allowed for the batch (we feed 1); dynamic H/W
    raise here and are resolved by the caller from the sidecar.
    """
    dims = list(shape)
    if len(dims) == 4 and dims[3] in SUPPORTED_CHANNELS:
        return (dims[1], dims[2]), int(dims[3])
    nchw = len(dims) == 4 and dims[1] in SUPPORTED_CHANNELS
    h, w = (dims[2], dims[3]) if nchw else DEFAULT_INPUT_HW
    raise ModelError(
        f"{path.name} expects 1x{_shape_text([h, w])}x1 {dtype_name}; got input "
        f"{_shape_text(dims)}{' (NCHW?)' if nchw else ''}: export NHWC with 1 or 3 channels"
    )


def _is_mask_shape(shape) -> bool:
    """(1, H, W, C): 4 dims; dynamic dims (None, -1, symbolic) allowed. C = 1 for a
    nerve-only model, the number of sidecar classes for a multi-class one (edge.loop checks)."""
    dims = list(shape)
    return len(dims) == 4 and (not isinstance(dims[3], int) or dims[3] >= 1 or dims[3] == -1)


def check_mask_output(path: Path, shapes: list) -> int | None:
    """A segmentation model has a (1, H, W, C) mask output; refuse others at open, not at
    the first frame (a classifier exported by mistake, a wrong output picked at export).
    Returns C, the mask's channel count (None when the model leaves it dynamic)."""
    masks = [list(s) for s in shapes if _is_mask_shape(s)]
    if not masks:
        got = ", ".join(_shape_text(s) for s in shapes) or "none"
        raise ModelError(
            f"{path.name} has no 1xHxWx1 mask output (outputs: {got}): export the "
            f"segmentation model's mask output (edge-convert does), or pick another model"
        )
    channels = masks[0][3]
    return int(channels) if isinstance(channels, int) and channels > 0 else None


def _static_hw(path: Path, hw) -> tuple[int, int]:
    """Fixed (H, W), taking dynamic sizes from the sidecar's input_hw."""
    if all(isinstance(d, int) and d > 0 for d in hw):
        return int(hw[0]), int(hw[1])
    meta_hw = load_meta(path).input_hw
    if meta_hw is None:
        raise ModelError(
            f"{path.name} has a dynamic input size {_shape_text(hw)} and its sidecar "
            f"{path.with_suffix('.json').name} gives no input_hw: add \"input_hw\": [H, W]"
        )
    return meta_hw


def check_model_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ModelError(
            f"model file {p} does not exist: pass --model PATH to a .tflite or .onnx file "
            f"(omit --model to use the packaged default)"
        )
    if not os.access(p, os.R_OK):
        raise ModelError(f"model file {p} is not readable: fix its permissions")
    return p


class TFLiteBackend:
    """TFLite through LiteRT (XNNPACK on by default for float and int8)."""

    def __init__(self, model_path: str | os.PathLike, threads: int | None = None):
        self.model_path = check_model_file(model_path)
        self.threads = threads
        module_name, module = _import_tflite()
        self.name = f"tflite({module_name.split('.')[0]},xnnpack)"
        self._interp = _make_interpreter(module, self.model_path, threads)
        inp = self._interp.get_input_details()
        if len(inp) != 1:
            raise ModelError(f"{self.model_path.name} has {len(inp)} inputs; expected one image")
        self._inp = inp[0]
        self.input_dtype = np.dtype(self._inp["dtype"])
        self.input_hw, self.input_channels = check_input_shape(
            self.model_path, [int(d) for d in self._inp["shape"]], self.input_dtype.name
        )
        self._in_scale, self._in_zp = _quant_params(self._inp)
        self._outs = sorted(self._interp.get_output_details(), key=lambda d: d["name"])
        self.mask_channels = check_mask_output(
            self.model_path, [[int(n) for n in d["shape"]] for d in self._outs])
        self._out_quant = [_quant_params(d) for d in self._outs]
        # Preallocated buffers: no per-frame allocation on the input side.
        self._qbuf = np.empty(tuple(self._inp["shape"]), dtype=self.input_dtype)
        self._fbuf = np.empty(tuple(self._inp["shape"]), dtype=np.float32)

    @property
    def is_gray8_exact(self) -> bool:
        """True when quantizing pixel/255 is just pixel - 128 (see run_gray8)."""
        return (
            self.input_dtype == np.int8
            and self._in_zp == GRAY8_ZERO_POINT
            and abs(self._in_scale - GRAY8_SCALE) <= SCALE_RTOL * GRAY8_SCALE
        )

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        self._interp.set_tensor(self._inp["index"], self._quantize(x))
        self._interp.invoke()
        return self._read_outputs()

    def run_gray8(self, gray: np.ndarray) -> list[np.ndarray]:
        """Fast path for int8 models with scale 1/255 and zero point -128 when the metadata
        normalization is pixel/255: flipping the top bit of a uint8 pixel IS pixel - 128 in
        two's complement, so no float math at all. Callers check ``is_gray8_exact`` first."""
        q = self._qbuf.reshape(self.input_hw + (self.input_channels,))
        np.bitwise_xor(gray[:, :, None], np.uint8(0x80), out=q.view(np.uint8), casting="unsafe")
        self._interp.set_tensor(self._inp["index"], self._qbuf)
        self._interp.invoke()
        return self._read_outputs()

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        if self.input_dtype == np.float32:
            return np.ascontiguousarray(x, dtype=np.float32)
        return quantize(x, self._in_scale, self._in_zp, out=self._qbuf, work=self._fbuf)

    def _read_outputs(self) -> list[np.ndarray]:
        outs = []
        for det, (scale, zp) in zip(self._outs, self._out_quant, strict=True):
            y = self._interp.get_tensor(det["index"])
            outs.append(y.copy() if y.dtype == np.float32 else dequantize(y, scale, zp))
        return outs


def quantize(
    x: np.ndarray,
    scale: float,
    zero_point: int,
    out: np.ndarray,
    work: np.ndarray | None = None,
) -> np.ndarray:
    """q = clip(round(x / scale) + zero_point) into ``out`` (int8 or uint8, x's shape).
    ``work`` is an optional float32 scratch buffer of the same shape (no allocation)."""
    lo, hi = INT_RANGES[out.dtype]
    if work is None:
        work = np.empty(out.shape, np.float32)
    np.multiply(x, np.float32(1.0 / scale), out=work)
    np.rint(work, out=work)
    np.add(work, np.float32(zero_point), out=work)
    np.clip(work, lo, hi, out=work)
    out[...] = work
    return out


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """x = (q - zero_point) * scale, as float32."""
    return (q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def _quant_params(detail: dict) -> tuple[float, int]:
    scale, zp = detail.get("quantization", (0.0, 0))
    if np.dtype(detail["dtype"]) in INT_RANGES and scale == 0.0:
        raise ModelError(
            f"tensor {detail['name']} is {np.dtype(detail['dtype']).name} without quantization "
            f"parameters: re-export with full-integer quantization"
        )
    return float(scale), int(zp)


def _import_tflite():
    for name in TFLITE_MODULES:
        try:
            return name, importlib.import_module(name)
        except ImportError:
            continue
    raise ModelError(
        "no TFLite interpreter found: pip install ai-edge-litert (or tflite-runtime), "
        "or use an .onnx model with --backend onnx"
    )


def _make_interpreter(module, path: Path, threads: int | None):
    try:
        # LiteRT writes "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." straight to
        # fd 2 with no switch; drop it so user-facing errors stay one line.
        with native_stderr_without((NATIVE_INFO_PREFIX,)):
            interp = module.Interpreter(model_path=str(path), num_threads=threads)
            interp.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise ModelError(
            f"{path} is not a valid TFLite model ({_first_line(e)}): "
            f"pass a .tflite written by edge-convert, or an .onnx with --backend onnx"
        ) from None
    return interp


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


class OnnxBackend:
    """ONNX Runtime. Jetson: pass ["TensorrtExecutionProvider", "CUDAExecutionProvider",
    "CPUExecutionProvider"] (onnxruntime-gpu) as providers."""

    def __init__(
        self,
        model_path: str | os.PathLike,
        threads: int | None = None,
        providers: list[str] | tuple[str, ...] | None = None,
    ):
        self.model_path = check_model_file(model_path)
        self.threads = threads
        ort = require("onnxruntime")  # an optional extra: one line with the install command
        self.providers = _check_providers(ort, list(providers or DEFAULT_PROVIDERS))
        self._sess = _make_session(ort, self.model_path, threads, self.providers)
        self.name = f"onnx({','.join(self._sess.get_providers())})"
        inputs = self._sess.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"{self.model_path.name} has {len(inputs)} inputs; expected one image")
        inp = inputs[0]
        if inp.type != "tensor(float)":
            raise ModelError(
                f"{self.model_path.name} input {inp.name!r} is {inp.type}; expected float32 "
                f"(tensor(float)): export the ONNX model with a float input"
            )
        self.input_dtype = np.dtype(np.float32)
        self._input_name = inp.name
        hw, self.input_channels = check_input_shape(self.model_path, inp.shape, "float32")
        self.input_hw = _static_hw(self.model_path, hw)
        outputs = sorted(self._sess.get_outputs(), key=lambda o: o.name)
        self.mask_channels = check_mask_output(self.model_path, [o.shape for o in outputs])
        self._output_names = [o.name for o in outputs]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float32)
        outs = self._sess.run(self._output_names, {self._input_name: x})
        return [np.asarray(o, dtype=np.float32) for o in outs]


def _check_providers(ort, providers: list[str]) -> list[str]:
    available = ort.get_available_providers()
    missing = [p for p in providers if p not in available]
    if missing:
        raise ModelError(
            f"ONNX Runtime provider(s) {', '.join(missing)} not available here; "
            f"available: {', '.join(available)} (--onnx-providers)"
        )
    return providers


def _make_session(ort, path: Path, threads: int | None, providers: list[str]):
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1  # one image at a time: no parallel branches worth a pool
    opts.log_severity_level = 3  # errors only: no provider warnings on every start
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types (no common base)
        raise ModelError(
            f"{path} is not a valid ONNX model ({_first_line(e)}): "
            f"pass an .onnx written by edge-convert, or a .tflite"
        ) from None


BACKENDS = {"tflite": TFLiteBackend, "onnx": OnnxBackend}


def backend_kind(model_path: str | os.PathLike, backend: str | None = None) -> str:
    """The backend name for a model: explicit ``backend`` wins, else the file suffix."""
    if backend is not None:
        if backend not in BACKENDS:
            raise ModelError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
        return backend
    suffix = Path(model_path).suffix.lower()
    kind = MODEL_FORMATS.get(suffix)  # the one suffix table (keras files have no device backend)
    if kind not in BACKENDS:
        raise ModelError(
            f"cannot tell the model format of {model_path} from its suffix {suffix!r}: "
            f"use .tflite or .onnx, or pass --backend {'|'.join(BACKENDS)}"
        )
    return kind


def open_backend(
    model_path: str | os.PathLike,
    backend: str | None = None,
    threads: int | None = None,
    providers: list[str] | tuple[str, ...] | None = None,
):
    """Open ``model_path`` with the backend named by ``backend`` or its suffix.

    threads: interpreter threads (None = the runtime's default).
    providers: ONNX Runtime execution providers (ignored for TFLite).
    Raises ModelError (missing file, not a model, unsupported input) naming the fix.
    """
    kind = backend_kind(model_path, backend)
    if kind == "onnx":
        return OnnxBackend(model_path, threads=threads, providers=providers)
    if providers:
        raise ModelError("--onnx-providers only applies to .onnx models (--backend onnx)")
    return TFLiteBackend(model_path, threads=threads)
