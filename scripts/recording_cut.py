"""Which video container survives a power cut? Measured, not assumed.

For each variant a child process writes phantom overlays (580x420 BGR, as edge-run --record
does) through cv2.VideoWriter, reporting each frame written; the parent SIGKILLs it after
KILL_AFTER frames (no release(), like a power cut; the page cache stays, as it would after a
kill -9, so this measures what the writer put in the file, not what the disk kept) and then
counts the frames cv2.VideoCapture can read back. A second run of each variant closes the
writer normally (sanity: every frame readable). Prints a Markdown table.

    python scripts/recording_cut.py [--frames 300] [--out table.md]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

KILL_AFTER = 300  # frames written before the cut: 10 s of video at 30 FPS
FPS = 30.0
SEGMENT_FRAMES = 60  # the "segments" variant: a new file every 2 s of video
FRAG_OPTIONS = "movflags;frag_keyframe+empty_moov+default_base_moof"
# name, suffix, fourcc, extra environment, segmented
VARIANTS = (
    ("mp4 mp4v (today's .mp4)", ".mp4", "mp4v", {}, False),
    ("mp4 mp4v + OPENCV_FFMPEG_WRITER_OPTIONS frag", ".mp4", "mp4v",
     {"OPENCV_FFMPEG_WRITER_OPTIONS": FRAG_OPTIONS}, False),
    ("mp4 avc1 (H.264)", ".mp4", "avc1", {}, False),
    ("mkv FFV1 (today's .mkv)", ".mkv", "FFV1", {}, False),
    ("mkv MJPG", ".mkv", "MJPG", {}, False),
    ("mkv mp4v", ".mkv", "mp4v", {}, False),
    ("avi MJPG (today's .avi)", ".avi", "MJPG", {}, False),
    (f"mp4 mp4v segments of {SEGMENT_FRAMES} frames", ".mp4", "mp4v", {}, True),
)


def frames(n: int):
    """Phantom overlays like edge-run records (gray frame, mask fill, text)."""
    from edge.io.phantom import PhantomSource
    from edge.view.overlay import draw_overlay

    src = PhantomSource()
    for i in range(n):
        gray = src.read().image
        bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
        yield draw_overlay(bgr, src.truth(i), 0.4, [f"{i} frames", "nerve: yes"])


def child(path: str, fourcc: str, segmented: bool, n: int) -> None:
    """Write n frames; after each one print "index total_encode_ms" (the parent may kill)."""
    writer, spent, stem = None, 0.0, Path(path)
    for i, image in enumerate(frames(n)):
        if writer is None or (segmented and i % SEGMENT_FRAMES == 0):
            if writer is not None:
                writer.release()
            target = stem.with_name(f"{stem.stem}.{i // SEGMENT_FRAMES:04d}{stem.suffix}") \
                if segmented else stem
            h, w = image.shape[:2]
            writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*fourcc), FPS, (w, h))
            if not writer.isOpened():
                print("cannot-open", flush=True)
                return
        t = time.perf_counter()
        writer.write(image)
        spent += time.perf_counter() - t
        print(f"{i + 1} {spent * 1000:.1f}", flush=True)
    writer.release()


def readable(paths: list[Path]) -> int:
    total = 0
    for p in paths:
        cap = cv2.VideoCapture(str(p))
        while cap.isOpened() and cap.read()[0]:
            total += 1
        cap.release()
    return total


def measure(variant, folder: Path, n: int, kill: bool) -> dict:
    name, suffix, fourcc, env, segmented = variant
    path = folder / f"v{abs(hash(name)) % 10**6}{'k' if kill else 'c'}{suffix}"
    cmd = [sys.executable, __file__, "--child", str(path), fourcc, str(int(segmented)),
           str(n + 1000 if kill else n)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, **env})
    written, spent_ms = 0, 0.0
    for line in proc.stdout:
        if line.startswith("cannot-open"):
            proc.wait()
            return {"variant": name, "error": "writer does not open"}
        written, spent_ms = int(line.split()[0]), float(line.split()[1])
        if kill and written >= n:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    files = sorted(folder.glob(f"{path.stem}*{suffix}"))
    return {"variant": name, "written": written, "readable": readable(files),
            "size_mb": round(sum(f.stat().st_size for f in files) / 1e6, 2),
            "encode_ms_per_frame": round(spent_ms / max(written, 1), 2)}


def table(rows: list[dict]) -> str:
    lines = ["| variant | written | readable after SIGKILL | readable after close | "
             "MB (300 frames) | encode ms/frame |", "|---|---:|---:|---:|---:|---:|"]
    for killed, closed in rows:
        if "error" in killed:
            lines.append(f"| {killed['variant']} | - | {killed['error']} | - | - | - |")
            continue
        lines.append(f"| {killed['variant']} | {killed['written']} | {killed['readable']} | "
                     f"{closed['readable']} | {closed['size_mb']} | "
                     f"{closed['encode_ms_per_frame']} |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4] == "1", int(sys.argv[5]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=KILL_AFTER)
    ap.add_argument("--out", type=str, default=None, help="also write the table + JSON here")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in VARIANTS:
            rows.append((measure(variant, Path(tmp), args.frames, kill=True),
                         measure(variant, Path(tmp), args.frames, kill=False)))
            print(rows[-1], file=sys.stderr, flush=True)
    text = table(rows)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n\n```json\n" + json.dumps(rows, indent=1) + "\n```\n")


if __name__ == "__main__":
    main()
