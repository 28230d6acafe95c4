"""THE settings resolver: a model's sidecar + the caller's overrides -> one frozen Settings.

    settings = resolve(meta, input_hw=(128, 176), channels=1, overrides=Overrides(roi=None))
    settings.pre, settings.post, settings.classes, settings.to_dict()

Every tool resolves a model's settings here once (edge-run, the evaluator behind edge-train
eval / the edge-convert gate / edge-bench accuracy, the DICOM path, and the web export, whose
JSON the browser runner reads as-is). Precedence, field by field:

    the caller's value (a flag) > the sidecar's > the documented default

Per class: the flag > the class's own sidecar value > the model's. ROI: --roi > the sidecar's
(``extra.roi``, the crop the model was trained and gated on) > the source's own image region
(a DICOM's ultrasound region, bound later by ``with_source_roi``) > none. The sidecar beats the
source because its ROI is part of the model's input contract: the frames it was trained and
validated on were cropped there, while a source's region only says where the image sits on
this screen. A sidecar ROI that does not fit the frames is an error naming the fix (--roi).
A nerve-only model is a list of one class (DEFAULT_CLASSES): there is no second path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from edge.errors import ModelError
from edge.model.metadata import ClassSpec, ModelMeta
from edge.model.postprocess import NERVE_NAME, PostprocessConfig
from edge.model.preprocess import PreprocessConfig

ROI_FROM = ("--roi", "sidecar", "source", "none")  # where Settings.roi came from


@dataclass(frozen=True)
class Overrides:
    """The caller's values; None = the sidecar's. smooth: EMA weight (0 = off; the caller
    turns it off for unrelated frames)."""

    roi: tuple[int, int, int, int] | None = None
    threshold: float | None = None
    min_area: int | None = None
    presence_threshold: float | None = None
    smooth: float = 0.0


@dataclass(frozen=True)
class Settings:
    """A model's resolved settings. classes: in output-channel order, each with its resolved
    threshold and min_area filled in (a nerve-only model: one class)."""

    input_hw: tuple[int, int]
    channels: int
    scale: float
    offset: float
    roi: tuple[int, int, int, int] | None
    roi_from: str
    threshold: float
    min_area: int
    presence_threshold: float
    smooth: float
    classes: tuple[ClassSpec, ...]

    @property
    def pre(self) -> PreprocessConfig:
        return PreprocessConfig(input_hw=self.input_hw, roi=self.roi, scale=self.scale,
                                offset=self.offset, channels=self.channels)

    @property
    def post(self) -> PostprocessConfig:
        return PostprocessConfig(threshold=self.threshold, min_area=self.min_area,
                                 smooth=self.smooth, presence_threshold=self.presence_threshold)

    @property
    def class_posts(self) -> tuple[PostprocessConfig, ...]:
        return tuple(replace(self.post, threshold=c.threshold, min_area=c.min_area)
                     for c in self.classes)

    @property
    def nerve_index(self) -> int:
        """The channel behind the nerve-only fields: the class named nerve, else the first."""
        names = [c.name for c in self.classes]
        return names.index(NERVE_NAME) if NERVE_NAME in names else 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (the web export's settings file; reports)."""
        d = asdict(self)
        d["input_hw"] = list(self.input_hw)
        d["roi"] = list(self.roi) if self.roi else None
        d["nerve_index"] = self.nerve_index
        return d

    def describe(self) -> str:
        roi = ",".join(map(str, self.roi)) if self.roi else "none"
        return (f"roi {roi} ({self.roi_from}), threshold {self.threshold}, min area "
                f"{self.min_area} px, smooth {self.smooth}")

    def with_source_roi(self, roi: tuple[int, int, int, int] | None) -> Settings:
        """The source's own image region, used only when neither --roi nor the sidecar gave
        one."""
        if self.roi is not None or roi is None:
            return self
        return replace(self, roi=tuple(int(v) for v in roi), roi_from="source")


def sidecar_roi(meta: ModelMeta, where: str = "sidecar") -> tuple[int, int, int, int] | None:
    """The crop the model was trained with (``extra.roi``, written by edge-convert), checked."""
    roi = meta.extra.get("roi")
    if roi is None:
        return None
    ok = (isinstance(roi, list) and len(roi) == 4
          and all(isinstance(v, int) and not isinstance(v, bool) for v in roi)
          and roi[0] >= 0 and roi[1] >= 0 and roi[2] > 0 and roi[3] > 0)
    if not ok:
        raise ModelError(f"{where}: field 'extra.roi' is {roi!r}; expected [x, y, w, h] in "
                         "frame pixels (w, h > 0) or null; fix it, or delete it")
    return tuple(roi)


def _pick(*values):
    return next(v for v in values if v is not None)


def resolve_classes(classes: tuple[ClassSpec, ...], threshold: float, min_area: int,
                    flags: Overrides) -> tuple[ClassSpec, ...]:
    """Each class with its threshold / min_area: the flag > its own > the model's."""
    return tuple(replace(c, threshold=float(_pick(flags.threshold, c.threshold, threshold)),
                         min_area=int(_pick(flags.min_area, c.min_area, min_area)))
                 for c in classes)


def resolve(meta: ModelMeta, input_hw: tuple[int, int], channels: int,
            overrides: Overrides | None = None, where: str = "sidecar") -> Settings:
    """THE resolver (see the module doc). ``input_hw``/``channels``: the model's own input."""
    o = overrides or Overrides()
    roi = o.roi or sidecar_roi(meta, where)
    threshold = float(_pick(o.threshold, meta.threshold))
    min_area = int(_pick(o.min_area, meta.min_area))
    return Settings(
        input_hw=tuple(int(v) for v in input_hw), channels=int(channels),
        scale=float(meta.scale), offset=float(meta.offset),
        roi=tuple(int(v) for v in roi) if roi else None,
        roi_from="--roi" if o.roi else "sidecar" if roi else "none",
        threshold=threshold, min_area=min_area,
        presence_threshold=float(_pick(o.presence_threshold, meta.presence_threshold)),
        smooth=float(o.smooth),
        classes=resolve_classes(meta.class_list, threshold, min_area, o))
