"""DicomSource: frames of DICOM files for edge-run (``--dicom FILE|DIR``), through pydicom.

Pixel formats: MONOCHROME1 (inverted to MONOCHROME2), MONOCHROME2 (any Bits Stored, scaled to
8 bits), RGB, YBR_FULL / YBR_FULL_422 / YBR_RCT / YBR_ICT (converted to RGB by pydicom) and
PALETTE COLOR (the file's lookup table applied). Encodings: whatever pydicom's decoders handle
with the [dicom] extra: uncompressed (little or big endian, deflated), RLE, JPEG baseline and
extended, JPEG-LS, JPEG 2000. Frames come out as the edge convention: gray or BGR uint8.

Files are decoded one frame at a time (a long cine never sits in memory whole). A folder is
read in natural name order; files that are not DICOM images (reports, DICOMDIR, our own SEGs)
are skipped; a file that claims to be a DICOM image but cannot be read (cut short, no pixel
data) is an error given alone, and in a folder a BadFrame at its place (the loop's
--on-bad-frame policy warns and counts it, or stops). Its ``info`` (edge.types.SourceInfo)
gives the ultrasound image region as the default ROI, the area of one pixel, and the
current file's frame rate; ``pace_when_watched``: edge.io.sources.open_source plays a cine
at that rate (edge.io.pacing.Paced) when the frames are shown live, never in a headless batch.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.deps import install_hint, require
from edge.errors import BadFrame, SourceError
from edge.io.dicom.regions import UltrasoundRegion, image_region
from edge.types import Frame, SourceInfo

logger = logging.getLogger(__name__)

MS_PER_S = 1000.0
FRAME_DIGITS = 4  # Frame.name = <file stem>_<frame number, 1-based, zero-padded>
DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic"})
REFS_KEPT = 256  # frames whose origin ref() still knows (sinks ask right after the read)
SKIP_SOP_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.66.4"})  # Segmentation: our own output
NO_PIXELS = "it has no pixel data (a header only, or the file was cut short)"
FIX_UNREADABLE = ("export the image or cine again from the scanner or PACS, or copy the whole "
                  "file again")


@dataclass
class Instance:
    """One DICOM image file: where it is, its header (no pixels), its ultrasound region."""

    path: Path
    header: Any  # pydicom Dataset read with stop_before_pixels
    region: UltrasoundRegion | None


def frame_rate(ds) -> float | None:
    """Frames per second from Frame Time (ms), Frame Time Vector, Cine Rate or Recommended
    Display Frame Rate, in that order; None for a single frame or when none is given."""
    frame_time = ds.get("FrameTime")
    if frame_time:
        return MS_PER_S / float(frame_time)
    vector = [float(v) for v in (ds.get("FrameTimeVector") or [])[1:] if float(v) > 0]
    if vector:
        return MS_PER_S / (sum(vector) / len(vector))
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        value = ds.get(keyword)
        if value:
            return float(value)
    return None


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _candidates(target: Path) -> list[Path]:
    if not target.exists():
        raise SourceError(f"DICOM file or folder not found: {target}; check the path")
    if target.is_file():
        return [target]
    return sorted((p for p in target.iterdir() if p.is_file() and not p.name.startswith(".")),
                  key=_natural_key)


def _check_decoder(path: Path, ds) -> None:
    """A missing decoder fails at open, in one line naming the extra."""
    from pydicom.pixels import get_decoder

    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax is None:
        return  # no meta: pydicom guesses implicit little endian (uncompressed)
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise SourceError(f"{path}: pixel encoding {syntax.name} is not supported; "
                          f"export the file uncompressed or as JPEG") from None
    if not decoder.is_available:
        raise SourceError(f"{path}: no decoder for {syntax.name} pixel data: "
                          f"{install_hint('dicom')}")


@dataclass(frozen=True)
class Unreadable:
    """A file in a folder that claims to be a DICOM image but cannot be read (cut short, no
    pixel data). Played as one bad frame at its place in the folder: the loop warns and
    counts it (--on-bad-frame skip) or stops naming it (stop)."""

    path: Path
    why: str

    def message(self) -> str:
        return f"{self.path}: {self.why}; none of its frames is read ({FIX_UNREADABLE})"


def _read_header(path: Path, pydicom):
    """(header without pixels, True when the file ends before any pixel data), or
    (None, False) when pydicom cannot parse it at all."""
    try:  # force: files without the 128-byte preamble are still DICOM
        with open(path, "rb") as fp:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
            # stop_before_pixels leaves the file at the Pixel Data tag; at the end: none
            ended = fp.tell() >= os.fstat(fp.fileno()).st_size
    except Exception:  # noqa: BLE001  pydicom raises many kinds on a non-DICOM file
        return None, False
    return ds, ended


def _is_image_class(uid) -> bool:
    name = getattr(uid, "name", "") if uid else ""
    return "Image Storage" in name


def _cut_short(ds) -> bool:
    """A header that ends early: a file meta without its transfer syntax, or an image
    storage class whose dataset stops before Rows."""
    meta = getattr(ds, "file_meta", None) or {}
    if meta and "TransferSyntaxUID" not in meta:
        return True
    return "Rows" not in ds and _is_image_class(meta.get("MediaStorageSOPClassUID"))


def _load_instance(path: Path, pydicom, explicit: bool) -> Instance | Unreadable | None:
    ds, ended = _read_header(path, pydicom)
    if ds is not None and (_cut_short(ds) or ("Rows" in ds and ended)):
        why = (NO_PIXELS if "Rows" in ds else "the file is cut short (its header is "
               "incomplete)")
        if explicit:
            raise SourceError(f"{path}: {why}; {FIX_UNREADABLE}")
        return Unreadable(path, why)
    if ds is None or ("SOPClassUID" not in ds and "Rows" not in ds):
        if explicit:
            raise SourceError(f"{path} is not a DICOM file; give a .dcm file or a folder "
                              f"of them")
        if ds is None and path.suffix.lower() in DICOM_SUFFIXES:
            return Unreadable(path, "pydicom cannot read it (not DICOM, or cut short)")
        return None
    if "Rows" not in ds or str(ds.get("SOPClassUID", "")) in SKIP_SOP_CLASSES:
        if explicit:
            raise SourceError(f"{path} has no image (SOP class {ds.get('SOPClassUID', '?')}); "
                              f"give a DICOM image or cine")
        return None
    _check_decoder(path, ds)
    return Instance(path, ds, image_region(ds, path.name))


def find_instances(target: str | Path) -> list[Instance | Unreadable]:
    """The DICOM images at ``target`` (a file, or a folder's files that are DICOM images), in
    order; in a folder, files that claim to be DICOM images but cannot be read are kept as
    Unreadable entries at their place."""
    pydicom = require("pydicom")
    target = Path(target)
    paths = _candidates(target)
    explicit = target.is_file()
    quick = pydicom.misc.is_dicom
    found = [inst for p in paths
             if (explicit or p.suffix.lower() in DICOM_SUFFIXES or quick(p))
             and (inst := _load_instance(p, pydicom, explicit)) is not None]
    images = [e for e in found if isinstance(e, Instance)]
    if not images:
        broken = [e for e in found if isinstance(e, Unreadable)]
        detail = f" ({broken[0].path.name}: {broken[0].why})" if broken else ""
        raise SourceError(f"no DICOM images in folder {target}{detail}: expected .dcm files "
                          f"or files with the DICM preamble")
    skipped = len(paths) - len(found)
    if skipped:
        logger.info("%s: %d file(s) skipped (not DICOM images)", target, skipped)
    return found


def to_8bit(pixels: np.ndarray, ds) -> np.ndarray:
    """A decoded frame -> gray or BGR uint8 (the edge convention)."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        rgb = apply_color_lut(pixels, ds)
        bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
        rgb = rgb >> (bits - 8) if bits > 8 else rgb
        return cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2BGR)
    if pixels.ndim == 3:  # pydicom already converted YBR to RGB (as_rgb=True)
        if pixels.dtype != np.uint8:
            pixels = (pixels >> (int(ds.get("BitsStored", 16)) - 8)).astype(np.uint8)
        return cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2BGR)
    gray = _gray_8bit(pixels, int(ds.get("BitsStored", 8)))
    return 255 - gray if photometric == "MONOCHROME1" else gray


def _gray_8bit(pixels: np.ndarray, bits_stored: int) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    values = pixels.astype(np.int64)
    if np.issubdtype(pixels.dtype, np.signedinteger):
        values = values + (1 << (bits_stored - 1))  # signed -> unsigned range
    shift = max(0, bits_stored - 8)
    return np.clip(values >> shift, 0, 255).astype(np.uint8)


class DicomSource:
    """Frames of DICOM images and cines; see the module docstring. live=False."""

    def __init__(self, target: str | Path, loop: bool = False) -> None:
        self._entries = find_instances(target)  # images and Unreadable files, in order
        self.instances = [e for e in self._entries if isinstance(e, Instance)]
        region = self.instances[0].region
        self._info = SourceInfo(str(target), roi=region.roi if region else None,
                                pixel_area_mm2=region.pixel_area_mm2 if region else None,
                                pace_when_watched=True)
        self._rates = [frame_rate(inst.header) for inst in self.instances]
        self._current = 0  # the instance of the last frame read: its rate is info.fps
        self._warn_mixed_regions()
        self._loop = loop
        self._refs: dict[int, tuple[int, int]] = {}  # recent frame index -> (instance, frame)
        self._frames = self._iterate()
        self._index = 0

    def _warn_mixed_regions(self) -> None:
        first = self.instances[0].region
        if any(inst.region != first for inst in self.instances[1:]):
            logger.warning("the files differ in their ultrasound regions; the first file's "
                           "region is used for all (run them one file at a time to avoid this)")

    @property
    def info(self) -> SourceInfo:
        """The first file's region for all (warned when they differ); the frame rate of the
        file the last frame came from (the first file's before any read)."""
        return replace(self._info, fps=self._rates[self._current])

    def ref(self, index: int) -> tuple[Instance, int]:
        """(instance, 1-based frame number) of the frame with Frame.index ``index``."""
        inst, number = self._refs[index]
        return self.instances[inst], number

    def _iterate(self) -> Iterator[tuple[int, int, np.ndarray] | str]:
        """(instance, frame number, image) per frame; a message (str) where a file or the
        rest of it cannot be read (read() raises it as BadFrame, then goes on)."""
        from pydicom.pixels import iter_pixels

        while True:
            k = -1
            for entry in self._entries:
                if isinstance(entry, Unreadable):
                    yield entry.message()
                    continue
                k += 1
                n = 0
                try:
                    for n, pixels in enumerate(iter_pixels(entry.path, as_rgb=True), start=1):
                        yield k, n, to_8bit(pixels, entry.header)
                except Exception as exc:  # noqa: BLE001  pydicom raises many kinds
                    reason = (str(exc).splitlines() or [type(exc).__name__])[0]
                    yield (f"{entry.path}: frame {n + 1} and after cannot be decoded "
                           f"({reason}); {FIX_UNREADABLE}")
            if not self._loop:
                return

    def read(self) -> Frame | None:
        item = next(self._frames, None)
        if item is None:
            return None
        if isinstance(item, str):
            raise BadFrame(item)  # the next read goes on with the next file
        k, number, image = item
        self._current = k
        self._refs[self._index] = (k, number)
        self._refs.pop(self._index - REFS_KEPT, None)  # bounded with --loop
        name = f"{self.instances[k].path.stem}_{number:0{FRAME_DIGITS}d}"
        frame = Frame(image, self._index, name, time.monotonic())
        self._index += 1
        return frame

    def close(self) -> None:
        self._frames.close()
