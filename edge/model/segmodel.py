"""The model object: a model file opened once into a backend + resolved settings + classes.

    model = SegModel.open("edge/models/nerve_vessel_int8.tflite", Overrides(threshold=0.4))
    result = model(frame)                    # PostResult: masks per class at frame size
    pred = model.predict(grays)              # batched, model size: what the evaluator scores

edge-run (edge.loop), the one evaluator (edge.model.evaluate: edge-train eval, the
edge-convert gate, edge-bench accuracy), the DICOM path and the web export all open models
through this: the same model gives the same settings and masks in every tool. A Keras model
comes in as ``SegModel(backend, settings)`` (train.modelio builds both; no TensorFlow here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import ModelError
from edge.model.backends import open_backend
from edge.model.metadata import ModelMeta, check_sha256, load_meta, low_dice_warning
from edge.model.postprocess import Postprocessor, PostResult, split_outputs
from edge.model.preprocess import DEFAULT_OFFSET, DEFAULT_SCALE, frame_to_gray_input, normalize
from edge.model.settings import Overrides, Settings, resolve

NORM_RTOL = 1e-6  # when comparing sidecar normalization with the int8 fast path's


@dataclass
class Prediction:
    """Batched decisions at model size. masks: (N, H, W, C) uint8 0/1; prob: (N, H, W, C)
    float32; presence: (N, C) float32 where every frame had a score, else None."""

    masks: np.ndarray
    prob: np.ndarray
    presence: np.ndarray | None


def use_gray8_fast_path(backend, settings: Settings) -> bool:
    """int8 input with scale 1/255, zero point -128 and pixel/255 normalization: quantizing
    is pixel - 128, done without float math by the backend's run_gray8."""
    return (getattr(backend, "is_gray8_exact", False)
            and abs(settings.scale - DEFAULT_SCALE) <= NORM_RTOL * DEFAULT_SCALE
            and settings.offset == DEFAULT_OFFSET)


def check_class_count(path: Path, backend, meta: ModelMeta) -> None:
    """The mask output has one channel per sidecar class (ModelError naming both, and the fix)."""
    channels, classes = getattr(backend, "mask_channels", None), meta.class_list
    if channels is None or channels == len(classes):
        return
    listed = (f"lists {len(classes)} class(es) ({', '.join(c.name for c in classes)})"
              if meta.classes else 'has no "classes" list (nerve-only: 1 channel)')
    raise ModelError(
        f"{path.name} has a 1xHxWx{channels} mask output but its sidecar "
        f"{path.with_suffix('.json').name} {listed}: list one class per output channel under "
        f'"classes" (see docs/edge.md), or use the sidecar written with this model'
    )


def check_input_hw(path: Path, backend, meta: ModelMeta) -> None:
    if meta.input_hw is not None and tuple(meta.input_hw) != tuple(backend.input_hw):
        raise ModelError(
            f"{path.name}: sidecar input_hw {meta.input_hw} does not match the model input "
            f"{backend.input_hw}: fix or delete {path.with_suffix('.json').name}")


class SegModel:
    """One model: ``backend`` (any Backend), ``settings`` (resolved once), ``meta`` (the
    sidecar), ``path``; ``sha256``/``sha256_check`` when opened from a file."""

    def __init__(self, backend, settings: Settings, meta: ModelMeta | None = None,
                 path: Path | None = None):
        self.backend, self.settings, self.path = backend, settings, path
        self.meta = meta or ModelMeta()
        self.fast = use_gray8_fast_path(backend, settings)
        self.post = Postprocessor(settings.post, settings.classes)
        self.pre = settings.pre  # built once: Settings.pre makes a new config at each call
        self.sha256: str | None = None
        self.sha256_check = "not checked"

    @classmethod
    def open(cls, path: str | Path, overrides: Overrides | None = None, backend: str | None = None,
             threads: int | None = None, providers=None,
             allow_sha256_mismatch: bool = False) -> SegModel:
        """Open and check a .tflite/.onnx model and its sidecar (ModelError naming the file
        and the fix): input size, one channel per class, sha256 provenance."""
        path = Path(path)
        runner = open_backend(path, backend, threads, providers)
        meta = load_meta(path)
        check_input_hw(path, runner, meta)
        check_class_count(path, runner, meta)
        settings = resolve(meta, runner.input_hw, runner.input_channels, overrides or Overrides(),
                           where=f"sidecar {path.with_suffix('.json')}")
        model = cls(runner, settings, meta, path)
        model.sha256, model.sha256_check = check_sha256(path, meta, allow_sha256_mismatch)
        return model

    def with_source_roi(self, roi) -> SegModel:
        """The same model, its ROI falling back to the source's image region (settings.py)."""
        settings = self.settings.with_source_roi(roi)
        if settings is self.settings:
            return self
        other = SegModel(self.backend, settings, self.meta, self.path)
        other.sha256, other.sha256_check = self.sha256, self.sha256_check
        return other

    @property
    def warnings(self) -> list[str]:
        """What the user must know before trusting its masks (start, report, web status)."""
        low = low_dice_warning(self.meta)
        name = self.path.name if self.path else self.meta.name
        return [f"{name}: {low}"] if low else []

    # ------------------------------------------------------------------ one frame
    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Frame -> (gray at input size, float input or None on the int8 fast path)."""
        gray = frame_to_gray_input(image, self.pre)
        return gray, None if self.fast else normalize(gray, self.pre)

    def infer(self, gray: np.ndarray, x: np.ndarray | None) -> list[np.ndarray]:
        return self.backend.run_gray8(gray) if x is None else self.backend.run(x)

    def decide(self, outputs: list[np.ndarray], frame_hw: tuple[int, int]) -> PostResult:
        return self.post(outputs, frame_hw, self.settings.roi)

    def __call__(self, image: np.ndarray) -> PostResult:
        return self.decide(self.infer(*self.prepare(image)), image.shape[:2])

    # ------------------------------------------------------------------ scoring
    def predict(self, grays: np.ndarray) -> Prediction:
        """(N, H, W) uint8 frames already at the input geometry -> decisions at model size,
        frame by frame (no smoothing: scored frames are independent), batched when the
        backend takes batches (``max_batch``: the Keras backend)."""
        n, c = len(grays), len(self.settings.classes)
        h, w = self.settings.input_hw
        masks = np.zeros((n, h, w, c), np.uint8)
        prob = np.zeros((n, h, w, c), np.float32)
        presence: list[list[float | None]] = []
        step = max(1, int(getattr(self.backend, "max_batch", 1) or 1))
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            x = np.concatenate([normalize(g, self.pre) for g in grays[lo:hi]], axis=0)
            outs = [np.asarray(o) for o in self.backend.run(x)]
            for j in range(hi - lo):  # each frame as a batch-1 run gives it
                p, pres = split_outputs([o[j : j + 1] for o in outs], c)
                prob[lo + j] = p
                masks[lo + j] = np.stack(self.post.decide(p, pres), axis=-1)
                presence.append(pres)
        scored = n > 0 and all(v is not None for row in presence for v in row)
        return Prediction(masks, prob, np.asarray(presence, np.float32) if scored else None)


def open_model(path: str | Path, overrides: Overrides | None = None, **kw) -> SegModel:
    """SegModel.open (a .tflite/.onnx file; Keras: train.modelio.open_seg_model)."""
    return SegModel.open(path, overrides, **kw)
