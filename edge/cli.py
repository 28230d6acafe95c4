"""edge-run: segment nerves on live ultrasound frames. Flags -> RunConfig -> edge.loop.run.

The only place that turns errors into exit codes: 0 ok, 2 bad input (flags, paths, models,
sources, outputs), 1 runtime failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from edge.errors import EdgeError

PROG = "edge-run"
EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell convention
EXAMPLES = """\
examples:
  edge-run --source phantom --headless --max-frames 300      built-in phantom, FPS summary
  edge-run --camera 0 --width 1280 --height 720              USB grabber, window overlay
  edge-run --camera /dev/video2 --roi 120,60,640,480 --record out.mp4
  edge-run --video clip.mp4 --headless --report run.json     file in, JSON summary out
  edge-run --video rtsp://10.0.0.5/stream --headless --serve 8080
  edge-run --images scans/ --headless --save-masks masks/    one 0/255 PNG per image
  edge-run --picamera --threads 4 --smooth 0.5               Raspberry Pi camera
  edge-run --export-web site/                                 the tablet runner, for any host
  edge-run --model nerve.onnx --onnx-providers TensorrtExecutionProvider,CPUExecutionProvider

exit status: 0 ok, 2 bad input (flag, path, model, source, output), 1 runtime failure.
"""


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


def _add_source_flags(ap: argparse.ArgumentParser) -> None:
    g = ap.add_argument_group("source (one of; default: --source phantom)")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--camera", type=_camera, metavar="N|DEV",
                   help="USB/V4L2 camera or frame grabber: index (0) or device (/dev/video2)")
    x.add_argument("--video", type=str, metavar="PATH|URL",
                   help="video file or stream URL OpenCV can open (rtsp://, http://)")
    x.add_argument("--images", type=str, metavar="DIR",
                   help="folder of tif/png/jpg/bmp images (8/16-bit), sorted by name")
    x.add_argument("--picamera", action="store_true", help="Raspberry Pi camera (picamera2)")
    x.add_argument("--source", type=str, choices=["phantom"],
                   help="built-in synthetic phantom (no camera or data needed)")
    g.add_argument("--width", type=int, help="requested capture width (px)")
    g.add_argument("--height", type=int, help="requested capture height (px)")
    g.add_argument("--fps", type=float, help="requested capture rate (frames/s)")
    g.add_argument("--loop", action="store_true", help="restart video files / image folders")
    g.add_argument("--latest", action=argparse.BooleanOptionalAction, default=None,
                   help="keep only the newest frame (default: on for cameras and streams)")
    g.add_argument("--retry-s", type=float, default=None,
                   help="how long to reopen a live source that stops delivering (s)")


def _add_model_flags(ap: argparse.ArgumentParser) -> None:
    g = ap.add_argument_group("model")
    g.add_argument("--model", type=str, help="a .tflite or .onnx file (default: packaged model)")
    g.add_argument("--backend", type=str, choices=["tflite", "onnx"],
                   help="interpreter (default: from the model's suffix)")
    g.add_argument("--threads", type=int, default=None,
                   help="interpreter threads (default 1; try 4 on a Pi 4/5)")
    g.add_argument("--onnx-providers", type=_providers, metavar="A,B",
                   help="ONNX Runtime providers in order, e.g. "
                        "TensorrtExecutionProvider,CUDAExecutionProvider,CPUExecutionProvider")
    g.add_argument("--roi", type=_roi, metavar="X,Y,W,H",
                   help="crop the scanner image out of the screen before the model (px)")
    g.add_argument("--threshold", type=float, help="mask probability threshold (default: sidecar)")
    g.add_argument("--min-area", type=int,
                   help="drop blobs smaller than this many model-input pixels (default: sidecar)")
    g.add_argument("--smooth", type=float, default=0.0,
                   help="temporal smoothing, weight of the previous frame in [0, 1) (default 0)")


def _add_output_flags(ap: argparse.ArgumentParser) -> None:
    g = ap.add_argument_group("outputs")
    g.add_argument("--alpha", type=float, default=0.4, help="overlay fill opacity (default 0.4)")
    g.add_argument("--headless", action="store_true", help="no window")
    g.add_argument("--record", type=str, metavar="OUT.mp4", help="record the overlay video")
    g.add_argument("--save-masks", type=str, metavar="DIR", help="one 0/255 mask PNG per frame")
    g.add_argument("--report", type=str, metavar="RUN.json", help="write the summary as JSON")
    g.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    g.add_argument("--serve", type=str, metavar="[HOST:]PORT",
                   help="serve the overlay to browsers (default host 127.0.0.1)")
    g.add_argument("--serve-token", type=str, metavar="TOKEN", help="access token for --serve")
    g.add_argument("--serve-max-viewers", type=int, default=4, metavar="N",
                   help="most browsers streaming at once; more get 503 (default 4)")
    g.add_argument("--export-web", type=str, metavar="DIR",
                   help="copy the in-browser runner (page, runtime, web model: --model or the "
                        "packaged one) to DIR for any HTTPS host, then exit (docs/tablet.md)")
    g.add_argument("--no-stats", action="store_true", help="no FPS/latency text on the overlay")
    g.add_argument("--quiet", action="store_true", help="print only errors")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=PROG,
        description="Outline the nerve on ultrasound frames in real time, on the device.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_source_flags(ap)
    _add_model_flags(ap)
    _add_output_flags(ap)
    return ap


def _source_config(args: argparse.Namespace):
    from edge.sources import DEFAULT_RETRY_S, SourceConfig

    if args.camera is not None:
        kind, target = "camera", args.camera
    elif args.video is not None:
        kind, target = "video", args.video
    elif args.images is not None:
        kind, target = "images", args.images
    elif args.picamera:
        kind, target = "picamera", None
    else:
        kind, target = "phantom", None
    return SourceConfig(
        kind=kind, target=target, width=args.width, height=args.height, fps=args.fps,
        loop=args.loop, latest=args.latest,
        retry_s=DEFAULT_RETRY_S if args.retry_s is None else args.retry_s,
    )


def config_from_args(args: argparse.Namespace):
    from edge.loop import DEFAULT_THREADS, RunConfig

    return RunConfig(
        model=args.model, backend=args.backend,
        threads=DEFAULT_THREADS if args.threads is None else args.threads,
        providers=args.onnx_providers, source=_source_config(args), roi=args.roi,
        threshold=args.threshold, min_area=args.min_area, smooth=args.smooth, alpha=args.alpha,
        headless=args.headless, record=args.record, save_masks=args.save_masks,
        report=args.report, max_frames=args.max_frames, serve=args.serve,
        serve_token=args.serve_token, serve_max_viewers=args.serve_max_viewers,
        show_fps=not args.no_stats, quiet=args.quiet,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # usage errors: argparse prints and exits 2
    # OpenCV's own [ WARN ] lines (e.g. a missing /dev/video9) would duplicate our one-line
    # error; keep its errors only. Set before edge.loop imports cv2.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    try:
        if args.export_web:  # no frames: copy the /app/ site and stop
            from edge.web.site import export_web

            print(f"{PROG}: in-browser runner written to {export_web(args.export_web, args.model)}")
            return EXIT_OK
        from edge.loop import run

        run(config_from_args(args))
    except EdgeError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:  # during start-up; once frames flow, run() ends with a summary
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001  (anything else is a bug or a runtime failure)
        # Not a user error: keep the traceback, it is what a bug report needs.
        traceback.print_exc()
        print(f"{PROG}: unexpected error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_RUNTIME
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
