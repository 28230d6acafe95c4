"""Sources that read recordings: VideoFileSource (a video file, or a stream URL such as
rtsp://) and ImageDirSource (a folder of images, or one image)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import cv2

from edge.errors import BadFrame, SourceError
from edge.io.videocapture import DEFAULT_RETRY_S, CaptureFactory, CaptureSource
from edge.types import Frame, SourceInfo, new_frame

IMAGE_SUFFIXES = frozenset({".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp"})
LABEL_STEM_SUFFIX = "_mask"  # Kaggle nerve labels sit beside the images: NAME_mask.png
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


def is_stream_url(target: str | int | None) -> bool:
    return isinstance(target, str) and target.lower().startswith(STREAM_SCHEMES)


# --------------------------------------------------------------------------- video files
class VideoFileSource(CaptureSource):
    """A video file (not live, optional loop) or a stream URL such as rtsp:// (live).

    Grayscale videos read back as 3-channel BGR: preprocess converts them.
    """

    def __init__(
        self,
        target: str | Path,
        loop: bool = False,
        retry_s: float = DEFAULT_RETRY_S,
        capture_factory: CaptureFactory = cv2.VideoCapture,
    ) -> None:
        text = str(target)
        live = is_stream_url(text)
        if not live:
            _check_video_path(Path(text))
        super().__init__(text, text, cv2.CAP_ANY, capture_factory, live=live, loop=loop,
                         retry_s=retry_s)
        if not self._cap.isOpened():
            raise SourceError(self._open_error(text))
        self.info = SourceInfo(text, live, float(self._cap.get(cv2.CAP_PROP_FPS)) or None)
        if not live:
            # Read the first frame now: an undecodable file fails at open, before any output.
            self._pending = self._grab()
            if self._pending is None:
                self._cap.release()
                raise SourceError(self._open_error(text))

    def _open_error(self, text: str) -> str:
        if self.info.live:
            return f"cannot open stream {text}: check the URL, the network and the camera's login"
        return (
            f"cannot read video {text}: not a video this OpenCV build decodes, or cut short "
            f"(a recording that was not closed); convert it with "
            f"`ffmpeg -i {text} -c:v mpeg4 clip.mp4`, or record it again"
        )


def _check_video_path(path: Path) -> None:
    if not path.exists():
        raise SourceError(f"video file not found: {path}; check the path")
    if path.is_dir():
        raise SourceError(f"{path} is a folder, not a video; use --images {path}")


# --------------------------------------------------------------------------- image folders
def _natural_key(path: Path) -> list[Any]:
    """'1_2' sorts before '1_10' (frame numbers without zero padding, as in Kaggle names)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_images(folder: Path) -> list[Path]:
    """Image files in ``folder`` in natural order, without Kaggle label files (*_mask.*).
    Raises SourceError when the folder cannot be listed (permissions, not a folder)."""
    try:
        names = list(folder.iterdir())
    except OSError as e:
        raise SourceError(
            f"cannot list image folder {folder} ({e.strerror or e}); check that it is a "
            f"folder you may read (chmod +rx), or pick another"
        ) from e
    return sorted(
        (
            p
            for p in names
            if p.suffix.lower() in IMAGE_SUFFIXES
            and not p.stem.endswith(LABEL_STEM_SUFFIX)
            and p.is_file()
        ),
        key=_natural_key,
    )


class ImageDirSource:
    """Images of a folder in natural sort order (or one image file); not live.

    Files: .tif/.tiff/.png/.jpg/.jpeg/.bmp, any case, read unchanged (8- and 16-bit kept;
    preprocess.to_gray8 handles 16-bit). Files whose stem ends in "_mask" are label files of
    the Kaggle nerve layout and are skipped, so ``--images kaggle-nerve/train`` runs on the
    images only. Frame.name is the file stem, so saved masks line up with their inputs.
    """

    def __init__(self, target: str | Path, loop: bool = False) -> None:
        self.info = SourceInfo(str(target))
        self._loop = loop
        self._files = self._find(Path(target))
        self._pos = 0
        self._index = 0
        self._good_in_pass = 0  # a looping folder of only broken files must still end

    @staticmethod
    def _find(path: Path) -> list[Path]:
        if not path.exists():
            raise SourceError(f"image folder not found: {path}; check the path")
        if path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise SourceError(f"{path} is not an image folder; use --video {path} for videos")
            return [path]
        files = list_images(path)
        if not files:
            raise SourceError(
                f"no images in folder {path}: expected .tif/.png/.jpg/.bmp files "
                f"(files named *_mask.* are labels and are skipped)"
            )
        return files

    def read(self) -> Frame | None:
        if self._pos >= len(self._files):
            if not self._loop or not self._good_in_pass:
                return None
            self._pos, self._good_in_pass = 0, 0
        path = self._files[self._pos]
        self._pos += 1
        self._index += 1
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:  # moved past it already: the next read() gives the next file
            raise BadFrame(f"cannot read image {path}: not an image OpenCV decodes "
                           f"(corrupt or truncated); remove or replace it")
        self._good_in_pass += 1
        return new_frame(image, self._index - 1, path.stem)

    def close(self) -> None:
        self._files = []
