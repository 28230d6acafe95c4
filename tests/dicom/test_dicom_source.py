"""DicomSource: every pixel format and encoding of the issue, folders, frame rates, pacing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from dicomfiles import US_EXAMPLES

from edge.errors import BadFrame, SourceError
from edge.io.dicom.read import DicomSource, frame_rate
from edge.io.pacing import Paced
from edge.io.sources import SourceConfig, innermost, open_source, source_from_uri

REPO = Path(__file__).resolve().parents[2]
RGB_TOLERANCE = 2  # YBR_FULL -> RGB round trip in 8 bits


def read_all(source) -> list:
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    source.close()
    return frames


def gradient_rgb(frames: int = 2, height: int = 24, width: int = 32) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 7 % 256, ys * 9 % 256, (xs + ys) * 5 % 256], axis=-1)
    return np.stack([(base + 40 * i) % 256 for i in range(frames)]).astype(np.uint8)


@pytest.mark.parametrize("name", sorted(US_EXAMPLES))
def test_every_shipped_ultrasound_example_decodes_to_8bit_bgr(us_examples, name) -> None:
    import pydicom

    ds = pydicom.dcmread(us_examples[name], stop_before_pixels=True)
    frames = read_all(DicomSource(us_examples[name]))
    assert len(frames) == int(ds.get("NumberOfFrames") or 1)
    image = frames[0].image
    assert image.dtype == np.uint8 and image.shape == (ds.Rows, ds.Columns, 3)
    assert image.std() > 5  # real picture content, not a blank decode
    assert frames[-1].name == f"{Path(name).stem}_{len(frames):04d}"


def test_cine_frames_in_order_and_rgb_becomes_bgr(us_examples) -> None:
    from pydicom.pixels import pixel_array

    path = us_examples["examples_ybr_color.dcm"]
    frames = read_all(DicomSource(path))
    assert [f.index for f in frames] == list(range(30))
    for k in (0, 17, 29):
        rgb = pixel_array(path, index=k)  # pydicom's own YBR_FULL_422 -> RGB
        np.testing.assert_array_equal(frames[k].image, rgb[..., ::-1])


def test_uncompressed_rgb_is_flipped_to_bgr(us_examples) -> None:
    import pydicom

    path = us_examples["examples_rgb_color.dcm"]
    image = read_all(DicomSource(path))[0].image
    np.testing.assert_array_equal(image, pydicom.dcmread(path).pixel_array[..., ::-1])


def test_palette_color_applies_the_files_lookup_table(us_examples) -> None:
    import pydicom
    from pydicom.pixels import apply_color_lut

    path = us_examples["examples_palette.dcm"]
    ds = pydicom.dcmread(path)
    expected = (apply_color_lut(ds.pixel_array, ds) >> 8).astype(np.uint8)[..., ::-1]
    image = read_all(DicomSource(path))[0].image
    np.testing.assert_array_equal(image, expected)
    assert (image[..., 0] != image[..., 2]).any()  # colour (the blue header bar), not gray


def test_ybr_full_uncompressed_comes_back_as_the_rgb_it_encodes(us_file) -> None:
    rgb = gradient_rgb()
    path = us_file("ybr.dcm", pixels=rgb, photometric="YBR_FULL")
    frames = read_all(DicomSource(path))
    for frame, expected in zip(frames, rgb, strict=True):
        diff = np.abs(frame.image.astype(int) - expected[..., ::-1].astype(int))
        assert diff.max() <= RGB_TOLERANCE


def test_monochrome1_is_inverted_and_monochrome2_is_not(us_file) -> None:
    gray = np.arange(2 * 16 * 16, dtype=np.uint16).reshape(2, 16, 16).astype(np.uint8)
    mono1 = read_all(DicomSource(us_file("m1.dcm", pixels=gray, photometric="MONOCHROME1")))
    mono2 = read_all(DicomSource(us_file("m2.dcm", pixels=gray)))
    np.testing.assert_array_equal(mono2[1].image, gray[1])
    np.testing.assert_array_equal(mono1[1].image, 255 - gray[1])


def test_12_bit_gray_is_scaled_to_8_bits_not_clipped(us_file) -> None:
    gray = np.array([[[0, 1024, 2048, 4095]]], np.uint16)
    image = read_all(DicomSource(us_file("g12.dcm", pixels=gray, bits_stored=12)))[0].image
    assert image.tolist() == [[0, 64, 128, 255]]


@pytest.mark.parametrize("color", [False, True])
def test_rle_decodes_to_the_same_pixels_as_uncompressed(us_file, color) -> None:
    pixels = gradient_rgb(3) if color else gradient_rgb(3)[..., 0]
    plain = read_all(DicomSource(us_file("plain.dcm", pixels=pixels)))
    rle = read_all(DicomSource(us_file("rle.dcm", pixels=pixels, rle=True)))
    assert len(rle) == 3
    for a, b in zip(plain, rle, strict=True):
        np.testing.assert_array_equal(a.image, b.image)


def test_jpeg2000_matches_an_independent_decoder(us_examples) -> None:
    from pydicom.pixels import pixel_array

    path = us_examples["examples_jpeg2k.dcm"]
    image = read_all(DicomSource(path))[0].image
    other = pixel_array(path, decoding_plugin="pillow")  # lossless: decoders must agree
    np.testing.assert_array_equal(image, cv2.cvtColor(other, cv2.COLOR_RGB2BGR))


def test_folder_reads_images_in_natural_order_and_skips_other_files(tmp_path, us_file) -> None:
    gray = np.full((1, 8, 8), 50, np.uint8)
    for name in ("im10.dcm", "im2.dcm"):
        us_file(name, pixels=gray)
    (tmp_path / "notes.txt").write_text("not dicom")
    (tmp_path / "DICOMDIR_like").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 16)
    source = DicomSource(tmp_path)
    assert [f.name for f in read_all(source)] == ["im2_0001", "im10_0001"]


def test_folder_files_that_cannot_be_read_are_bad_frames_at_their_place(tmp_path,
                                                                         us_file) -> None:
    """A header-only file and a file cut inside its header: each one BadFrame naming it, where
    it stands in the folder; the images around them still play."""
    import pydicom

    gray = np.full((1, 8, 8), 50, np.uint8)
    for name in ("a.dcm", "b.dcm", "c.dcm", "d.dcm"):
        us_file(name, pixels=gray)
    ds = pydicom.dcmread(tmp_path / "b.dcm")
    del ds.PixelData
    ds.save_as(tmp_path / "b.dcm")
    (tmp_path / "c.dcm").write_bytes((tmp_path / "c.dcm").read_bytes()[:400])
    source, seen = DicomSource(tmp_path), []
    while True:
        try:
            frame = source.read()
        except BadFrame as e:
            seen.append(str(e))
            continue
        if frame is None:
            break
        seen.append(frame.name)
    assert seen[0] == "a_0001" and seen[3] == "d_0001" and len(seen) == 4
    assert "b.dcm" in seen[1] and "no pixel data" in seen[1]
    assert "c.dcm" in seen[2] and "cut short" in seen[2]


def test_frame_rate_sources_in_order(us_file) -> None:
    import pydicom

    gray = np.zeros((2, 8, 8), np.uint8)
    cases = [({"frame_time_ms": 40.0, "cine_rate": 10}, 25.0), ({"cine_rate": 12}, 12.0),
             ({"display_fps": 15}, 15.0), ({}, None)]
    for i, (kwargs, fps) in enumerate(cases):
        ds = pydicom.dcmread(us_file(f"r{i}.dcm", pixels=gray, **kwargs))
        assert frame_rate(ds) == fps


class FakeClock:
    def __init__(self) -> None:
        self.now, self.sleeps = 100.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_cine_declares_its_rate_and_is_paced_only_when_watched(us_file) -> None:
    path = us_file("cine.dcm", pixels=np.zeros((5, 8, 8), np.uint8), frame_time_ms=50.0)
    cfg = SourceConfig(kind="dicom", target=str(path))
    batch = open_source(cfg)
    assert isinstance(batch, DicomSource)  # headless batch: as fast as possible
    assert batch.info.fps == pytest.approx(20.0) and batch.info.pace_when_watched
    assert not batch.info.paced and not batch.info.live
    batch.close()
    watched = open_source(cfg, watched=True)
    assert isinstance(watched, Paced) and isinstance(innermost(watched), DicomSource)
    assert watched.info.paced and watched.info.fps == pytest.approx(20.0)
    watched.close()


def test_pacing_plays_a_cine_at_its_frame_time(us_file) -> None:
    clock = FakeClock()
    path = us_file("cine.dcm", pixels=np.zeros((5, 8, 8), np.uint8), frame_time_ms=50.0)
    read_all(Paced(DicomSource(path), clock=clock.monotonic, sleep=clock.sleep))
    assert clock.now - 100.0 == pytest.approx(4 * 0.050)  # 5 frames, 4 intervals


def test_a_folder_of_cines_plays_each_at_its_own_rate(us_file) -> None:
    clock = FakeClock()
    frames = np.zeros((3, 8, 8), np.uint8)
    first = us_file("a.dcm", pixels=frames, frame_time_ms=50.0)
    us_file("b.dcm", pixels=frames, frame_time_ms=100.0)
    source = DicomSource(first.parent)
    assert source.info.fps == pytest.approx(20.0)  # before any read: the first file's
    read_all(Paced(source, clock=clock.monotonic, sleep=clock.sleep))
    # a's three frames 50 ms apart (its last one shown for 50 ms too), then b's 100 ms apart
    assert clock.sleeps == pytest.approx([0.05, 0.05, 0.05, 0.1, 0.1])
    assert source.info.fps == pytest.approx(10.0)  # the file the last frame came from


def test_factory_and_uri_open_dicom(us_examples) -> None:
    path = us_examples["examples_rgb_color.dcm"]
    assert source_from_uri(str(path)).kind == "dicom"
    source = open_source(SourceConfig(kind="dicom", target=str(path)))
    assert isinstance(source, DicomSource) and source.read() is not None
    source.close()


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.dcm", "not found"),
    (lambda d: (d / "x.dcm").write_bytes(b"plain text") and d / "x.dcm", "not a DICOM file"),
    (lambda d: d, "no DICOM images in folder"),
])
def test_bad_inputs_are_one_clear_error(tmp_path, make, message) -> None:
    with pytest.raises(SourceError, match=message):
        DicomSource(make(tmp_path))


def test_missing_decoder_names_the_extra_and_the_install_command(us_examples) -> None:
    """Hide every JPEG decoder pydicom could use: opening the JPEG cine fails in one line."""
    code = (
        "import sys\n"
        "for m in ('pylibjpeg', 'libjpeg', 'openjpeg', 'PIL', 'gdcm', 'rle'):\n"
        "    sys.modules[m] = None\n"
        "from edge.io.dicom.read import DicomSource\n"
        "from edge.errors import BadFrame, SourceError\n"
        f"try:\n    DicomSource({str(us_examples['examples_ybr_color.dcm'])!r})\n"
        "except SourceError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, env={"PYTHONPATH": str(REPO)}, timeout=120)
    assert "no decoder for JPEG Baseline" in out.stdout, out.stderr
    assert "pip install -e '.[dicom]'" in out.stdout


def test_without_pydicom_dicom_input_is_one_line_naming_the_extra(us_examples) -> None:
    code = (
        "import sys\n"
        "sys.modules['pydicom'] = None\n"
        "from edge.cli import main\n"
        f"sys.exit(main(['--dicom', {str(us_examples['examples_rgb_color.dcm'])!r}, "
        "'--headless', '--quiet']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, env={"PYTHONPATH": str(REPO)}, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        "edge-run: error: DICOM input needs 'pydicom', which is not installed: "
        "pip install -e '.[dicom]' from the nerve-edge repository root"]
