"""What one edge-run needs: RunConfig, a frozen dataclass with documented defaults (edge.cli
maps the flags onto it; library callers such as edge-bench pipeline build it themselves).
A bad value is a UserInputError naming the flag and the fix, raised when the config is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.errors import UserInputError
from edge.io import capture as capturing  # "capture" is also a RunConfig field
from edge.io.sources import SourceConfig
from edge.view.tls import ServeOptions

# One interpreter thread by default: predictable latency, and the other cores stay free for
# capture, drawing and encoding. On the shared 2-core x86 test machine 1 and 2 threads were
# within noise for the tiny fixture. Raise it (--threads 4 on a Pi 4/5) for bigger models.
DEFAULT_THREADS = 1
DEFAULT_ALPHA = 0.4
DEFAULT_MAX_VIEWERS = 4  # browsers streaming --serve at once
BAD_FRAME_POLICIES = ("skip", "stop")


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs. None means "from the model's metadata" or "off".

    model: .tflite/.onnx path; None = the packaged default (nerve_default.* when shipped,
           else the phantom-trained fixture).
    backend: "tflite" | "onnx" | None (= from the model's suffix).
    threads: interpreter threads (see DEFAULT_THREADS).
    providers: ONNX Runtime execution providers (None = CPU).
    source: which frames to read (edge.io.sources.SourceConfig; default: the phantom).
    roi: (x, y, w, h) crop in frame pixels before resizing to the model input (None = the
         source's image region, ``info.roi``, if it has one, else the whole frame).
    threshold, min_area: override the sidecar's values (None = sidecar / defaults).
    smooth: EMA weight of the previous probability map (0 = off; forced off for image folders).
    alpha: overlay fill opacity.
    headless: no window. record: video file of the overlays. save_masks: folder for 0/255 PNGs.
    report: JSON file for the summary. max_frames: stop after this many frames (None = run on).
    serve: "[HOST:]PORT" for the web view; serve_token: its access token; serve_options:
           its HTTPS, pairing and mDNS settings (edge.view.tls.ServeOptions).
    show_fps: draw FPS and per-stage ms on the overlay. quiet: no config block, status or summary.
    on_bad_frame: "skip" (warn, count in the summary, go on) or "stop" (end the run, exit 2).
    allow_sha256_mismatch: run a model whose sidecar sha256 does not match (warned, reported).
    dicom_out: folder for the DICOM SEG + overlay capture (DICOM input only; edge.io.dicom).
    pacs: send those to this PACS ("HOST:PORT:AET" or a DICOMweb URL); kept in an outbox.
    capture: folder for raw frames to label later (edge.io.capture), at most one every
             capture_every seconds, up to capture_max_mb of PNGs in the folder.
    """

    model: str | None = None
    backend: str | None = None
    threads: int | None = DEFAULT_THREADS
    providers: tuple[str, ...] | None = None
    source: SourceConfig = field(default_factory=SourceConfig)
    roi: tuple[int, int, int, int] | None = None
    threshold: float | None = None
    min_area: int | None = None
    smooth: float = 0.0
    alpha: float = DEFAULT_ALPHA
    headless: bool = False
    record: str | None = None
    save_masks: str | None = None
    report: str | None = None
    max_frames: int | None = None
    serve: str | None = None
    serve_token: str | None = None
    serve_max_viewers: int = DEFAULT_MAX_VIEWERS
    serve_options: ServeOptions = field(default_factory=ServeOptions)
    show_fps: bool = True
    quiet: bool = False
    on_bad_frame: str = "skip"
    allow_sha256_mismatch: bool = False
    dicom_out: str | None = None
    pacs: str | None = None
    capture: str | None = None
    capture_every: float = capturing.DEFAULT_EVERY_S
    capture_max_mb: float = capturing.DEFAULT_MAX_MB

    def __post_init__(self):
        checks = [
            (self.threads is None or self.threads >= 1, f"--threads {self.threads}: use 1 or more"),
            (self.threshold is None or 0.0 < self.threshold < 1.0,
             f"--threshold {self.threshold}: use a probability between 0 and 1, e.g. 0.5"),
            (self.min_area is None or self.min_area >= 0, f"--min-area {self.min_area}: use >= 0"),
            (0.0 <= self.smooth < 1.0,
             f"--smooth {self.smooth}: use a weight in [0, 1), e.g. 0.5 (0 = off)"),
            (0.0 <= self.alpha <= 1.0, f"--alpha {self.alpha}: use an opacity from 0 to 1"),
            (self.max_frames is None or self.max_frames >= 1,
             f"--max-frames {self.max_frames}: use 1 or more"),
            (self.on_bad_frame in BAD_FRAME_POLICIES,
             f"--on-bad-frame {self.on_bad_frame}: use one of {', '.join(BAD_FRAME_POLICIES)}"),
            (self.pacs is None or bool(self.dicom_out),
             "--pacs needs --dicom-out DIR: files are written there and kept until the PACS "
             "has them"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserInputError(message)
