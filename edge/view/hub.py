"""The latest frame and its encodings, between the loop thread and the viewers' threads.

The loop thread only swaps a reference to the latest FrameResult under a lock
(``FrameHub.put``). Drawing and JPEG encoding happen in the HTTP threads, lazily, at most once
per new frame and opacity (shared by all viewers), and at most STREAM_MAX_FPS times a second,
one encode at a time, so viewers can never take more than ENCODE_DUTY of one core from the
pipeline however many there are. See edge/view/serve.py.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from edge.model.classes import class_status
from edge.types import FrameResult
from edge.view import metrics as serve_metrics
from edge.view.overlay import draw_overlay

ALPHA_STEP = 0.05  # requested opacities are rounded to this, so viewers share encodes
STREAM_MAX_FPS = 25.0  # frames/s sent to viewers at most: smooth to the eye
# Drawing + JPEG encoding may use at most this share of one core (all viewers together):
# ~4 ms per 580x420 frame on a laptop core -> 25 FPS; a slow board gets fewer, the loop none.
ENCODE_DUTY = 0.10
JPEG_QUALITY = 80  # 580x420 frames: ~30-40 kB each


def alpha_key(alpha: float) -> int:
    """Opacity in [0, 1] -> an integer step, the cache key shared by viewers."""
    return round(min(max(alpha, 0.0), 1.0) / ALPHA_STEP)


def render(result: FrameResult, key: int) -> np.ndarray:
    """The overlaid frame at opacity step ``key`` (drawn here, never in the loop thread)."""
    return draw_overlay(result.frame, result.mask, alpha=key * ALPHA_STEP,
                        classes=result.classes, class_map=result.class_map,
                        warning=result.safety_warning)


def status_of(result: FrameResult | None) -> dict:
    """The frame-dependent half of /status.json, as plain JSON types."""
    if result is None:
        return {"frame_index": None, "name": None, "fps": None, "stage_ms": {},
                "detected": None, "area_px": None, "area_mm2": None, "presence": None,
                "width": None, "height": None, "classes": {}, "safety_warning": None}
    height, width = result.frame.shape[:2]
    presence = None if result.presence is None else float(result.presence)
    return {"frame_index": int(result.frame_index), "name": str(result.name),
            "fps": float(result.fps),
            "stage_ms": {str(k): float(v) for k, v in result.stage_ms.items()},
            "detected": bool(result.detected), "area_px": int(result.area_px),
            "area_mm2": None if result.area_mm2 is None else float(result.area_mm2),
            "presence": presence, "width": int(width), "height": int(height),
            "classes": class_status(result.classes),
            "safety_warning": bool(result.safety_warning)}


@dataclass
class _Encoded:
    seq: int
    data: bytes


class FrameHub:
    """The latest result (handed over by the loop) and its encodings (made by viewers)."""

    def __init__(self, max_viewers: int,
                 stall_after_s: float = serve_metrics.STALL_AFTER_S) -> None:
        self.max_viewers = max_viewers
        self.stall_after_s = stall_after_s
        self.started = time.monotonic()
        self.closed = False
        self.model: dict[str, str] = {}  # labels of the model_info metric
        self.model_warnings: list[str] = []  # e.g. converted below the Dice floor
        self._cond = threading.Condition()  # guards the fields below
        self._counters = serve_metrics.RunCounters()
        self._latest: FrameResult | None = None
        self._seq = 0  # 0 = nothing yet; +1 per write
        self._written = 0.0
        self._viewers = 0
        self._encode_lock = threading.Lock()  # one encode at a time, see module doc
        self._cache: dict[int, _Encoded] = {}  # opacity step -> newest encode
        self._rest_until = 0.0  # time.monotonic() before which the encoder rests

    def put(self, result: FrameResult) -> None:
        """Called by the loop thread: a reference swap, a few counters and a wake-up."""
        with self._cond:
            self._counters.record(result.detected, result.stage_ms)
            self._latest = result
            self._seq += 1
            self._written = time.monotonic()
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def latest(self) -> tuple[int, FrameResult | None]:
        with self._cond:
            return self._seq, self._latest

    def wait_newer(self, seq: int, timeout_s: float) -> bool:
        """Block until a frame newer than ``seq`` exists (True) or timeout/close (False)."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > seq or self.closed, timeout_s)
            return self._seq > seq and not self.closed

    def add_viewer(self) -> bool:
        with self._cond:
            if self._viewers >= self.max_viewers:
                return False
            self._viewers += 1
            return True

    def remove_viewer(self) -> None:
        with self._cond:
            self._viewers -= 1

    def jpeg(self, key: int, newer_than: int = 0) -> tuple[int, bytes] | None:
        """The newest frame as JPEG at opacity ``key``, newer than the caller's ``newer_than``.

        One encoder for all viewers: a recent encode is reused while the encoder rests, so N
        viewers cost one encode per frame, not N. Between encodes it rests long enough that
        drawing + encoding stays under ENCODE_DUTY of one core and STREAM_MAX_FPS.
        """
        with self._encode_lock:
            seq, result = self.latest()
            if result is None:
                return None
            now, cached = time.monotonic(), self._cache.get(key)
            if cached and cached.seq > newer_than and (cached.seq == seq or now < self._rest_until):
                return cached.seq, cached.data
            time.sleep(max(0.0, self._rest_until - now))
            seq, result = self.latest()  # the newest after the rest
            started = time.monotonic()
            ok, buf = cv2.imencode(".jpg", render(result, key),
                                   [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            spent = time.monotonic() - started  # wall time: a busy device makes it rest longer
            self._rest_until = started + max(1.0 / STREAM_MAX_FPS, spent / ENCODE_DUTY)
            if not ok:
                return None
            self._cache[key] = _Encoded(seq, buf.tobytes())
            return seq, self._cache[key].data

    def png(self, key: int) -> bytes | None:
        """A lossless snapshot of the newest overlay (not cached: snapshots are rare)."""
        with self._encode_lock:
            _, result = self.latest()
            if result is None:
                return None
            ok, buf = cv2.imencode(".png", render(result, key))
            return buf.tobytes() if ok else None

    def frame_age_s(self) -> float | None:
        """Seconds since the loop last handed over a frame (None before the first)."""
        with self._cond:
            return None if self._seq == 0 else time.monotonic() - self._written

    def health(self) -> tuple[int, dict]:
        return serve_metrics.health(self.frame_age_s(), self.closed, self.stall_after_s)

    def metrics(self) -> str:
        with self._cond:  # a consistent copy; rendering happens outside the lock
            counters = copy.deepcopy(self._counters)
            result, viewers = self._latest, self._viewers
        age = self.frame_age_s()
        return serve_metrics.render_metrics(
            counters, status_of(result), self.model, time.monotonic() - self.started, age,
            self.health()[0] == 200, viewers)

    def status(self, alpha: float) -> dict:
        seq, result = self.latest()
        with self._cond:
            viewers, written = self._viewers, self._written
        now = time.monotonic()
        status = status_of(result)
        status.update({
            "frame_age_ms": None if result is None else round((now - written) * 1000.0, 1),
            "viewers": viewers, "max_viewers": self.max_viewers,
            "uptime_s": round(now - self.started, 1), "alpha_default": alpha,
            "stream_max_fps": STREAM_MAX_FPS, "model_warnings": list(self.model_warnings),
        })
        return status

