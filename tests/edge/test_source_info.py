"""SourceInfo: every source kind declares what it knows, the wrappers pass it on, the factory
paces by it, and nothing in edge/ probes a source's attributes with getattr/hasattr."""

from __future__ import annotations

import ast
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import SourceError
from edge.io.files import ImageDirSource, VideoFileSource
from edge.io.latest import LatestFrame
from edge.io.pacing import Paced
from edge.io.phantom import PhantomSource
from edge.io.sources import SourceConfig, innermost, open_source, pacing
from edge.types import FrameSource, SourceInfo

EDGE = Path(__file__).resolve().parents[2] / "edge"
# What sources used to be asked for with getattr/hasattr before SourceInfo declared it.
CAPABILITIES = {"fps", "roi", "default_roi", "pixel_area_mm2", "pace", "live", "label", "ref"}


def test_files_folders_and_the_phantom_declare_their_info(small_video: Path, tmp_path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8), np.uint8))
    video, images, phantom = (VideoFileSource(small_video), ImageDirSource(tmp_path),
                              PhantomSource(64, 48))
    assert video.info == SourceInfo(str(small_video), live=False, fps=pytest.approx(10.0))
    assert images.info == SourceInfo(str(tmp_path))
    assert phantom.info == SourceInfo("the phantom")
    for source in (video, images, phantom):
        assert isinstance(source, FrameSource)
        assert source.info.roi is None and source.info.pixel_area_mm2 is None
        assert not source.info.paced and not source.info.pace_when_watched
        source.close()


def test_a_stream_url_is_live_in_its_info() -> None:
    class OpenCapture:
        def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
            return True

        def get(self, prop: int) -> float:
            return 25.0 if prop == cv2.CAP_PROP_FPS else 0.0

        def release(self) -> None:
            pass

    stream = VideoFileSource("rtsp://cam.local/live", capture_factory=lambda t, a: OpenCapture())
    assert stream.info == SourceInfo("rtsp://cam.local/live", live=True, fps=25.0)
    stream.close()


def test_wrappers_forward_info_and_pacing_says_so() -> None:
    phantom = PhantomSource(64, 48)
    paced = Paced(phantom, fps=12.5)
    assert paced.info == SourceInfo("the phantom", fps=12.5, paced=True)
    latest = LatestFrame(paced)
    assert latest.info == paced.info and innermost(latest) is phantom
    latest.close()


def test_paced_without_a_rate_follows_the_sources_own() -> None:
    class Cine(PhantomSource):
        info = SourceInfo("cine", fps=None)

    source = Cine(64, 48)
    paced = Paced(source)
    assert paced.info.fps is None and paced.read() is not None  # no rate: not held
    source.info = SourceInfo("cine", fps=30.0)
    assert paced.info.fps == 30.0
    with pytest.raises(SourceError, match="--fps"):
        Paced(source, fps=0)


@pytest.mark.parametrize("cfg, info, watched, expected", [
    (SourceConfig(), SourceInfo("p"), True, (False, None)),  # as fast as possible
    (SourceConfig(fps=20.0), SourceInfo("p"), False, (True, 20.0)),
    (SourceConfig(realtime=True), SourceInfo("v", fps=25.0), False, (True, None)),
    (SourceConfig(fps=20.0), SourceInfo("c", live=True, fps=30.0), True, (False, None)),
    (SourceConfig(), SourceInfo("d", fps=20.0, pace_when_watched=True), False, (False, None)),
    (SourceConfig(), SourceInfo("d", fps=20.0, pace_when_watched=True), True, (True, None)),
])
def test_pacing_decisions(cfg, info, watched, expected) -> None:
    assert pacing(cfg, info, watched) == expected


def test_realtime_without_a_rate_is_refused_and_the_factory_paces_by_info() -> None:
    with pytest.raises(SourceError, match="--realtime: phantom has no frame rate"):
        pacing(SourceConfig(realtime=True), SourceInfo("the phantom"))
    source = open_source(SourceConfig(fps=30.0, width=64, height=48))
    assert isinstance(source, Paced) and source.info.paced and source.info.fps == 30.0
    source.close()


def _probes(tree: ast.AST) -> list[str]:
    """getattr/hasattr calls that ask a source for a capability, and __getattr__ forwarders."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            found.append(f"line {node.lineno}: def __getattr__")
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr") and len(node.args) >= 2):
            continue
        target, name = ast.unparse(node.args[0]), node.args[1]
        asks = isinstance(name, ast.Constant) and name.value in CAPABILITIES
        if asks or "source" in target.lower():
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_nothing_in_edge_probes_a_source_with_getattr() -> None:
    offenders = {}
    for path in sorted(EDGE.rglob("*.py")):
        if "vendor" in path.parts:
            continue
        probes = _probes(ast.parse(path.read_text(), str(path)))
        if path.name == "signals.py":  # wraps sys.stderr, not a source
            probes = [p for p in probes if "__getattr__" not in p]
        if probes:
            offenders[str(path.relative_to(EDGE.parent))] = probes
    assert not offenders, f"use the source's info (edge.types.SourceInfo): {offenders}"
