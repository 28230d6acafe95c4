"""The /app/ page's demo clip, rendered from the built-in phantom (edge/io/phantom.py) when the
site is served or exported: no clip is committed, and no frame of any data set is in it.

The clip is an image sequence in one JPEG (the frames stacked top to bottom) plus a JSON
that says how to cut it: the page cuts it into frames once and plays them through the same
per-frame work as a camera or a video file (grab, segment, draw), looping, each frame drawn
at ``scale`` times its stored size (like a video shown at its display size).

    python -m edge.view.web.demo DIR      (writes demo/phantom.jpg and demo/phantom.json into DIR)
"""

from __future__ import annotations

import atexit
import json
import shutil
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from edge.fsutil import atomic_write_bytes, atomic_write_text
from edge.io.phantom import PHANTOM_HEIGHT, PHANTOM_WIDTH, PhantomSource
from edge.log import note, say

DEMO_FRAMES = 60  # frames in the loop
DEMO_STEP = 4  # every 4th phantom frame: 60 x 4 = 240 frames, one lateral motion period,
# so the loop closes almost without a jump
DEMO_FPS = 15  # playback rate: the phantom's motion at about half its 30 fps speed
DEMO_SCALE = 2  # stored at half size (290x210; 4x fewer bytes) and drawn back at the phantom's
# 580x420 by the page, the frame size of the Kaggle scanner the model was trained on
DEMO_SEED = 0
JPEG_QUALITY = 80  # speckle is noise: JPEG keeps the clip near 1.3 MB, PNG would be 6x that
SPRITE = "phantom.jpg"
INFO = "phantom.json"
SITE_DIR = "demo"  # the clip's folder in the /app/ site


def render_clip() -> tuple[np.ndarray, dict]:
    """(the frames stacked top to bottom, uint8 gray, and the description the page reads)."""
    phantom = PhantomSource(PHANTOM_WIDTH, PHANTOM_HEIGHT, seed=DEMO_SEED)
    size = (PHANTOM_WIDTH // DEMO_SCALE, PHANTOM_HEIGHT // DEMO_SCALE)
    frames = [cv2.resize(phantom.frame(k * DEMO_STEP), size, interpolation=cv2.INTER_AREA)
              for k in range(DEMO_FRAMES)]
    info = {"sprite": SPRITE, "frames": DEMO_FRAMES, "width": size[0], "height": size[1],
            "scale": DEMO_SCALE, "fps": DEMO_FPS,
            "source": f"edge.io.phantom.PhantomSource({PHANTOM_WIDTH}, {PHANTOM_HEIGHT}, "
            f"seed={DEMO_SEED}): every {DEMO_STEP}th frame from 0, "
            f"resized to {size[0]}x{size[1]} (INTER_AREA); synthetic, no patient data"}
    return np.vstack(frames), info


def write_clip(folder: str | Path) -> dict[str, Path]:
    """Write the clip into ``folder``; returns site path -> file (demo/phantom.*)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sprite, info = render_clip()
    ok, jpeg = cv2.imencode(".jpg", sprite, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("OpenCV could not encode the demo clip as JPEG")
    files = {f"{SITE_DIR}/{SPRITE}": atomic_write_bytes(folder / SPRITE, jpeg.tobytes()),
             f"{SITE_DIR}/{INFO}": atomic_write_text(folder / INFO, json.dumps(info, indent=1))}
    return files


@lru_cache(maxsize=1)
def clip_files() -> dict[str, Path]:
    """The clip, rendered once per process into a private temp folder removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="nerve-edge-demo-"))
    atexit.register(shutil.rmtree, folder, True)
    return write_clip(folder)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        note("usage: python -m edge.view.web.demo DIR")
        return 2
    for path in write_clip(args[0]).values():
        say(f"demo: wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
