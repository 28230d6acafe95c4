"""edge-run: segment nerves on live ultrasound frames. Flags -> RunConfig -> edge.loop.run.

Errors become exit codes through edge.clikit.run_cli: 0 ok, 2 bad input (flags, paths,
models, sidecars, sources, outputs, a missing extra), 1 runtime failure (a live source lost,
a report that could not be written at the end), 130 interrupted (Ctrl-C or SIGTERM, after the
summary, the report and a playable recording).
"""

from __future__ import annotations

# First: Ctrl-C and SIGTERM end the program with 130 and one line from here on, also during
# the heavy imports below and in the body (numpy, OpenCV, TensorFlow): edge.signals.
from edge import signals

signals.install_if_program("edge-run", __name__)

import argparse
import os
import sys

from edge import clikit, log
from edge.io.dicom.flags import add_dicom_flags, flush_outbox

PROG = "edge-run"
EXAMPLES = """\
examples:
  edge-run --source phantom --headless --max-frames 300      built-in phantom, FPS summary
  edge-run --camera 0 --width 1280 --height 720              USB grabber, window overlay
  edge-run --camera /dev/video2 --roi 120,60,640,480 --record out.mp4
  edge-run --video clip.mp4 --headless --report run.json     file in, JSON summary out
  edge-run --video clip.mp4 --realtime --serve 8080          play a clip at its own rate
  edge-run --video rtsp://10.0.0.5/stream --headless --serve 8080
  edge-run --camera 0 --headless --serve 0.0.0.0:8443       tablets: HTTPS, CA + pairing QR
  edge-run --images scans/ --headless --save-masks masks/    one 0/255 PNG per image
  edge-run --picamera --threads 4 --smooth 0.5               Raspberry Pi camera
  edge-run --dicom cine.dcm --headless --dicom-out out/ --pacs 10.0.0.9:4242:PACS
  edge-run --export-web site/                                 the tablet runner, for any host
  edge-run --camera 0 --capture frames/ --capture-every 1     keep 1 raw frame/s to label
  edge-run --model nerve.onnx --onnx-providers TensorrtExecutionProvider,CPUExecutionProvider

exit status: 0 ok; 2 bad input (flag, path, model, sidecar, source, output, missing extra);
1 runtime failure (live source lost, report not writable at the end); 130 Ctrl-C or SIGTERM
(the summary, --report and --record are still written).
"""


# ------------------------------------------------------------------------------- arg types
def _roi(text: str) -> tuple[int, int, int, int]:
    parts = text.split(",")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"{text!r}: use x,y,w,h in pixels, e.g. 120,60,640,480")
    return values  # type: ignore[return-value]


def _camera(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _providers(text: str) -> tuple[str, ...]:
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    if not names:
        raise argparse.ArgumentTypeError("give comma-separated names, e.g. CPUExecutionProvider")
    return names


# ------------------------------------------------------------------------------- flags
def _add_source_flags(ap: argparse.ArgumentParser) -> None:
    from edge.io.sources import DEFAULT_RETRY_S

    g = ap.add_argument_group("source (one of; default: --source phantom)")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--camera", type=_camera, metavar="N|DEV",
                   help="USB/V4L2 camera or frame grabber: index (0) or device (/dev/video2)")
    x.add_argument("--video", type=str, metavar="PATH|URL",
                   help="video file or stream URL OpenCV can open (rtsp://, http://)")
    x.add_argument("--images", type=str, metavar="DIR",
                   help="folder of tif/png/jpg/bmp images (8/16-bit), sorted by name")
    x.add_argument("--picamera", action="store_true", help="Raspberry Pi camera (picamera2)")
    x.add_argument("--dicom", type=str, metavar="FILE|DIR",
                   help="DICOM ultrasound image, cine loop or folder of them (extra [dicom])")
    x.add_argument("--source", type=str, choices=["phantom"],
                   help="built-in synthetic phantom, no camera or data needed (the default)")
    g.add_argument("--width", type=clikit.positive_int, metavar="PX",
                   help="requested capture width (default: the device's; phantom 580)")
    g.add_argument("--height", type=clikit.positive_int, metavar="PX",
                   help="requested capture height (default: the device's; phantom 420)")
    g.add_argument("--fps", type=clikit.positive_float, metavar="N",
                   help="cameras: requested capture rate; files, folders, phantom: play at this "
                        "rate (default: the device's / as fast as the model runs)")
    g.add_argument("--realtime", action="store_true",
                   help="play a video file at its own frame rate (folders and the phantom: "
                        "at --fps) instead of as fast as possible (default: off)")
    g.add_argument("--loop", action="store_true",
                   help="restart video files / image folders at the end (default: off)")
    g.add_argument("--latest", action=argparse.BooleanOptionalAction, default=None,
                   help="keep only the newest frame (default: on for cameras and streams)")
    g.add_argument("--retry-s", type=clikit.non_negative_float, default=DEFAULT_RETRY_S,
                   metavar="S",
                   help="a live source that delivers nothing is reopened for this long, then "
                        f"counts as lost: exit 1 (default {DEFAULT_RETRY_S:g})")
    g.add_argument("--on-bad-frame", choices=["skip", "stop"], default="skip",
                   help="an undecodable image or video frame: skip it with a warning (counted "
                        "in the summary) or stop with exit 2 (default: skip)")


def _add_model_flags(ap: argparse.ArgumentParser) -> None:
    from edge.runconfig import DEFAULT_THREADS

    g = ap.add_argument_group("model")
    g.add_argument("--model", type=str, metavar="PATH",
                   help="a .tflite or .onnx file, or a folder edge-deploy installed (e.g. "
                   "/var/lib/nerve-edge/models/current) (default: the packaged model)")
    g.add_argument("--backend", type=str, choices=["tflite", "onnx"],
                   help="interpreter (default: from the model's suffix)")
    g.add_argument("--threads", type=clikit.positive_int, default=DEFAULT_THREADS, metavar="N",
                   help=f"interpreter threads (default {DEFAULT_THREADS}; try 4 on a Pi 4/5)")
    g.add_argument("--onnx-providers", type=_providers, metavar="A,B",
                   help="ONNX Runtime providers in order, e.g. TensorrtExecutionProvider,"
                        "CUDAExecutionProvider,CPUExecutionProvider (default: CPU)")
    g.add_argument("--roi", type=_roi, metavar="X,Y,W,H",
                   help="crop the scanner image out of the screen before the model, in px "
                        "(default: the whole frame)")
    g.add_argument("--threshold", type=float, metavar="P",
                   help="mask probability threshold (default: the sidecar's, else 0.5)")
    g.add_argument("--min-area", type=int, metavar="PX",
                   help="drop blobs smaller than this many model-input pixels "
                        "(default: the sidecar's, else 0)")
    g.add_argument("--smooth", type=float, default=0.0, metavar="W",
                   help="temporal smoothing, weight of the previous frame in [0, 1) (default 0)")
    g.add_argument("--allow-sha256-mismatch", action="store_true",
                   help="run a model whose sidecar sha256 does not match the file, with a "
                        "warning, recorded in --report (default: refuse, exit 2)")


def _add_output_flags(ap: argparse.ArgumentParser) -> None:
    from edge.runconfig import DEFAULT_ALPHA, DEFAULT_MAX_VIEWERS

    g = ap.add_argument_group("outputs")
    g.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, metavar="A",
                   help=f"overlay fill opacity (default {DEFAULT_ALPHA})")
    g.add_argument("--headless", action="store_true",
                   help="no window; a status line on stderr every 2 s (default: a window)")
    g.add_argument("--record", type=str, metavar="OUT.mkv",
                   help="record the overlay video: .mkv or .avi play up to a power cut; .mp4 "
                        "is written as .mkv for that reason (default: none)")
    g.add_argument("--save-masks", type=str, metavar="DIR",
                   help="one 0/255 mask PNG per frame (default: none)")
    g.add_argument("--report", type=str, metavar="RUN.json",
                   help="write the summary as JSON (default: none)")
    g.add_argument("--max-frames", type=clikit.positive_int, metavar="N",
                   help="stop after N frames (default: run until the source ends)")
    g.add_argument("--serve", type=str, metavar="[HOST:]PORT",
                   help="serve the overlay to browsers (default: off; host 127.0.0.1)")
    g.add_argument("--serve-token", type=str, metavar="TOKEN",
                   help="access token for --serve (default: generated beyond localhost)")
    g.add_argument("--serve-max-viewers", type=clikit.positive_int, default=DEFAULT_MAX_VIEWERS,
                   metavar="N",
                   help=f"most browsers streaming at once; more get 503 "
                        f"(default {DEFAULT_MAX_VIEWERS})")
    _add_serve_security_flags(g)
    g.add_argument("--no-stats", action="store_true",
                   help="no FPS/latency text on the overlay (default: shown)")
    g.add_argument("--quiet", action="store_true",
                   help="print only warnings and errors (default: config, status, summary)")
    g.add_argument("--export-web", type=str, metavar="DIR",
                   help="copy the in-browser runner (page, runtime, web model: --model or the "
                        "packaged one) to DIR for any HTTPS host, then exit (default: none; "
                        "docs/tablet.md)")
    g.add_argument("--fetch-web-runtime", action="store_true",
                   help="download the in-browser runner's pinned runtime (LiteRT.js) from the "
                        "npm registry into the installed kit, then exit (default: off; a board "
                        "installed with pip, docs/deploy-pi.md)")
    clikit.add_common_flags(g)
    _add_capture_flags(ap)


def _add_capture_flags(ap: argparse.ArgumentParser) -> None:
    from edge.io.capture import DEFAULT_EVERY_S, DEFAULT_MAX_MB

    g = ap.add_argument_group("capture frames to label (docs/clinic.md)")
    g.add_argument("--capture", type=str, metavar="DIR",
                   help="save raw frames (lossless PNG, full size, no overlay) to DIR while "
                        "the model runs, to label later (default: off)")
    g.add_argument("--capture-every", type=clikit.non_negative_float, default=DEFAULT_EVERY_S,
                   metavar="S", help=f"at most one frame every S seconds "
                                     f"(default {DEFAULT_EVERY_S:g})")
    g.add_argument("--capture-max-mb", type=clikit.positive_float, default=DEFAULT_MAX_MB,
                   metavar="MB", help="stop capturing, with one warning, when DIR's PNGs reach "
                                      f"this size (default {DEFAULT_MAX_MB:g})")


def _add_serve_security_flags(g) -> None:
    from edge.view.tls import TLS_MODES

    g.add_argument("--tls", type=str, choices=TLS_MODES, default="auto",
                   help="HTTPS for --serve: auto = beyond loopback, with a local CA made once "
                        "(its fingerprint and a pairing QR code are printed); on = also on "
                        "loopback (default: auto; docs/serve.md)")
    g.add_argument("--tls-cert", type=str, metavar="CERT.pem",
                   help="serve HTTPS with this certificate (e.g. the hospital's) instead of "
                        "the local CA's; needs --tls-key (default: none)")
    g.add_argument("--tls-key", type=str, metavar="KEY.pem",
                   help="the private key of --tls-cert (default: none)")
    g.add_argument("--insecure-http", action="store_true",
                   help="plain HTTP beyond loopback: frames and token unencrypted on the "
                        "network; warned (default: off)")
    g.add_argument("--serve-unpair", action="store_true",
                   help="renew the pairing secret: every paired tablet must scan the new QR "
                        "code; without --serve, renew and exit (default: off)")
    g.add_argument("--no-mdns", action="store_true",
                   help="do not announce the web view as nerve-edge-HOST.local over mDNS "
                        "(default: announced beyond loopback)")


def _serve_options(args: argparse.Namespace):
    from edge.view.tls import ServeOptions

    return ServeOptions(tls=args.tls, cert=args.tls_cert, key=args.tls_key,
                        insecure_http=args.insecure_http, mdns=not args.no_mdns)


def _unpair() -> None:
    from edge.view.pairing import rotate_secret
    from edge.view.state import state_dir

    folder = state_dir()
    rotate_secret(folder)
    log.say(f"{PROG}: new pairing secret in {folder}: every tablet must scan the new QR code")


def build_parser() -> argparse.ArgumentParser:
    ap = clikit.ArgumentParser(
        prog=PROG,
        description="Outline the nerve on ultrasound frames in real time, on the device.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_source_flags(ap)
    _add_model_flags(ap)
    _add_output_flags(ap)
    add_dicom_flags(ap)
    return ap


# ------------------------------------------------------------------------------- config
def _source_config(args: argparse.Namespace):
    from edge.io.sources import SourceConfig

    if args.camera is not None:
        kind, target = "camera", args.camera
    elif args.video is not None:
        kind, target = "video", args.video
    elif args.images is not None:
        kind, target = "images", args.images
    elif args.picamera:
        kind, target = "picamera", None
    elif args.dicom is not None:
        kind, target = "dicom", args.dicom
    else:
        kind, target = "phantom", None
    return SourceConfig(
        kind=kind, target=target, width=args.width, height=args.height, fps=args.fps,
        realtime=args.realtime, loop=args.loop, latest=args.latest, retry_s=args.retry_s,
    )


def config_from_args(args: argparse.Namespace):
    from edge.model.store import resolve_installed
    from edge.runconfig import RunConfig

    return RunConfig(
        model=resolve_installed(args.model), backend=args.backend, threads=args.threads,
        providers=args.onnx_providers, source=_source_config(args), roi=args.roi,
        threshold=args.threshold, min_area=args.min_area, smooth=args.smooth, alpha=args.alpha,
        headless=args.headless, record=args.record, save_masks=args.save_masks,
        report=args.report, max_frames=args.max_frames, serve=args.serve,
        serve_token=args.serve_token, serve_max_viewers=args.serve_max_viewers,
        serve_options=_serve_options(args),
        show_fps=not args.no_stats, quiet=args.quiet, on_bad_frame=args.on_bad_frame,
        allow_sha256_mismatch=args.allow_sha256_mismatch,
        dicom_out=args.dicom_out, pacs=args.pacs, capture=args.capture,
        capture_every=args.capture_every, capture_max_mb=args.capture_max_mb,
    )


def _main(argv: list[str]) -> int:
    # OpenCV's own [ WARN ] lines (e.g. a missing /dev/video9) would duplicate our one-line
    # error; keep its errors only. Set before the parser's defaults import cv2.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    args = build_parser().parse_args(argv)  # usage errors: argparse prints and exits 2
    if args.pacs_flush:  # only the DICOM outbox: no model, no frames
        return flush_outbox(args.dicom_out, args.pacs)
    if args.fetch_web_runtime:  # no frames: install the /app/ runtime and stop
        from edge.view.web.fetch import fetch_web_runtime

        log.say(f"{PROG}: in-browser runtime installed in {fetch_web_runtime()}")
        return clikit.EXIT_OK
    if args.export_web:  # no frames: copy the /app/ site and stop
        from edge.view.web.site import export_web

        log.say(f"{PROG}: in-browser runner written to {export_web(args.export_web, args.model)}")
        return clikit.EXIT_OK
    if args.serve_unpair:
        _unpair()
        if not args.serve:
            return clikit.EXIT_OK
    from edge.loop import run

    run(config_from_args(args))
    return clikit.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return signals.finish(clikit.run_cli(PROG, _main, argv))  # a program leaves here


if __name__ == "__main__":
    sys.exit(main())
