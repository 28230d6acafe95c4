"""DicomSink: a run's DICOM outputs (``--dicom-out DIR``, optional ``--pacs NODE``).

While the run goes, it keeps each frame's mask (bit-packed) and, for the first
MAX_CAPTURE_FRAMES frames of each file, the overlay. At close (also after Ctrl-C, with the
frames done so far) it writes, for each source file, ``<stem>.seg.dcm`` (DICOM Segmentation)
and ``<stem>.overlay.dcm`` (Secondary Capture of the overlays). With a PACS it queues them in
``DIR/outbox`` and flushes the outbox (older pending files too); files the PACS did not take
stay there and are reported in one line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edge.errors import OutputError
from edge.fsutil import atomic_path, check_writable_dir
from edge.io.dicom.outbox import OUTBOX, Outbox, flush_message
from edge.io.dicom.pacs import PacsNode
from edge.io.dicom.read import DicomSource
from edge.io.dicom.seg import build_capture, build_seg
from edge.io.sources import innermost
from edge.log import note
from edge.stats import NerveArea
from edge.types import FrameResult
from edge.view.overlay import draw_overlay

logger = logging.getLogger(__name__)

MAX_CAPTURE_FRAMES = 600  # overlay frames kept per file (20 s at 30 fps): bounds the memory
SEG_SUFFIX = ".seg.dcm"
CAPTURE_SUFFIX = ".overlay.dcm"


class _Collected:
    """What one source file got: packed masks and overlays by 1-based frame number."""

    def __init__(self, instance) -> None:
        self.instance = instance
        self.masks: dict[int, bytes] = {}
        self.overlays: dict[int, np.ndarray] = {}


class DicomSink:
    """Collects per-frame masks of a DICOM run and writes SEG + capture at close."""

    needs_overlay = False  # it draws its own (area text only, no FPS) for the capture

    def __init__(self, folder: str | os.PathLike, source, *, alpha: float = 0.4,
                 pacs: PacsNode | None = None, model_version: str = "unknown",
                 log: Callable[[str], None] | None = print, retry_cmd: str = "") -> None:
        dicom = innermost(source)  # under the pacing or latest-frame wrapper, if any
        if not isinstance(dicom, DicomSource):
            raise OutputError("--dicom-out needs DICOM input (the SEG refers to the source "
                              "images): use --dicom PATH")
        self.folder = check_writable_dir(folder, "--dicom-out")
        self.outbox = Outbox(self.folder / OUTBOX) if pacs else None
        self._source, self._dicom, self._alpha, self._pacs = source, dicom, alpha, pacs
        self._version, self._log, self._retry_cmd = model_version, log, retry_cmd
        self._area = NerveArea(source.info.pixel_area_mm2)
        self._files: dict[str, _Collected] = {}
        self.written: list[Path] = []
        self._closed = False

    @classmethod
    def from_run(cls, folder: str, pacs: str | None, source, alpha: float,
                 model_version: str, log: Callable[[str], None] | None) -> DicomSink:
        """The sink edge.loop opens for ``--dicom-out DIR [--pacs NODE]``."""
        node = PacsNode.parse(pacs) if pacs else None
        retry = (f"edge-run --pacs-flush --dicom-out {folder} --pacs {node.spec()}"
                 if node else "")
        return cls(folder, source, alpha=alpha, pacs=node, model_version=model_version,
                   log=log, retry_cmd=retry)

    def write(self, result: FrameResult) -> None:
        instance, number = self._dicom.ref(result.frame_index)
        got = self._files.setdefault(str(instance.path), _Collected(instance))
        shape = (int(instance.header.Rows), int(instance.header.Columns))
        mask = result.mask
        if mask.shape[:2] != shape:
            mask = cv2.resize(mask, shape[::-1], interpolation=cv2.INTER_NEAREST)
        got.masks[number] = np.packbits(mask > 0).tobytes()
        if len(got.overlays) < MAX_CAPTURE_FRAMES or number in got.overlays:
            text = [self._area.text(result.area_px, result.detected)]
            overlay = draw_overlay(result.frame, result.mask, self._alpha, text)
            got.overlays[number] = cv2.cvtColor(overlay, cv2.COLOR_BGR2RGB)

    def should_stop(self) -> bool:
        return False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for got in self._files.values():
            self._write_instance(got)
        if self._files and self._log:
            self._log(f"dicom: wrote {len(self.written)} file(s) to {self.folder}")
        if self._pacs is not None:
            self._send()

    def _write_instance(self, got: _Collected) -> None:
        header = got.instance.header
        shape = (int(header.Rows), int(header.Columns))
        numbers = sorted(got.masks)
        masks = np.stack([_unpack(got.masks[n], shape) for n in numbers])
        stem = got.instance.path.stem
        seg = build_seg(header, masks, numbers, self._version)
        self._save(seg, self.folder / f"{stem}{SEG_SUFFIX}")
        shown = sorted(got.overlays)
        if len(shown) < len(numbers):
            logger.warning("%s: the overlay capture holds the first %d of %d frames",
                           stem, len(shown), len(numbers))
        capture = build_capture(header, np.stack([got.overlays[n] for n in shown]),
                                self._source.info.fps)
        self._save(capture, self.folder / f"{stem}{CAPTURE_SUFFIX}")

    def _save(self, ds, path: Path) -> None:
        with atomic_path(path) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        self.written.append(path)
        if self.outbox is not None:
            self.outbox.add(path, str(ds.SOPInstanceUID))

    def _send(self) -> None:
        result = self.outbox.flush(self._pacs)
        message = flush_message(result, self._pacs, self.outbox, self._retry_cmd)
        if result.kept:  # an error line, printed even with --quiet: files wait on disk
            note(message)
        elif self._log:
            self._log(message)


def _unpack(bits: bytes, shape: tuple[int, int]) -> np.ndarray:
    count = shape[0] * shape[1]
    return np.unpackbits(np.frombuffer(bits, np.uint8), count=count).reshape(shape)
