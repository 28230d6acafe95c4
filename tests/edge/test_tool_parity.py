"""One model, the same masks in every tool (issue 22): edge-run --save-masks, edge-train
eval's evaluator, the edge-convert gate's evaluator and the browser runner, on the same
frames, for a model whose sidecar carries a ROI (the crop it was trained on) and for
multi-class models.

Every tool opens the model as edge.model.SegModel, so the sidecar's ROI, thresholds and
classes are resolved once (edge.model.settings). The evaluators decide at the model's input
size; their masks are placed into the frame with edge.model.postprocess.to_frame (what
edge-run does) before the comparison. The browser runner (LiteRT.js in headless Chromium)
runs float-I/O web models only: the shipped nerve+vessel model is int8, so its browser twin is
the float two-class fixture, also with a ROI. Frames: synthetic for the fixture, real frames
for the shipped models (skipped when the data is absent). No TensorFlow: the evaluators are
NumPy + OpenCV for .tflite models."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_classes import CENTRE, EMPTY, LEFT, TWO_CLASS_TFLITE
from web_support import REPO, WEB_MODEL, app_page, browser_missing, read_gray

from edge.model.postprocess import class_id_map, to_frame
from edge.types import ClassResult
from tests.conftest import require_data

MODELS = REPO / "edge" / "models"
EDGE_RUN_TIMEOUT_S = 300
KAGGLE_FRAMES = 6
USGRA_FRAMES = 6
# the crops written into the copied sidecars (x, y, w, h in frame pixels)
KAGGLE_ROI = [20, 14, 200, 150]  # the shared data's 256 x 185 Kaggle frames
USGRA_ROI = [32, 48, 448, 400]  # 512 x 512 frames
FIXTURE_ROI = [8, 4, 80, 56]  # 96 x 64 frames

SEGMENT_JS = """
const [b64, width, height, done] = arguments;
const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const rgba = new Uint8ClampedArray(width * height * 4);
for (let i = 0; i < bytes.length; i++) {
  rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = bytes[i]; rgba[4 * i + 3] = 255;
}
nerveEdge.segment(new ImageData(rgba, width, height)).then((r) => {
  const out = r.classMap || r.mask;
  let s = '';
  for (let i = 0; i < out.length; i += 8192) {
    s += String.fromCharCode.apply(null, out.subarray(i, i + 8192));
  }
  done({map: btoa(s), classes: !!r.classMap});
}, (e) => done({error: String(e)}));
"""


# ------------------------------------------------------------------------------ fixtures
def model_with_roi(tmp_path: Path, model: Path, roi: list[int]) -> Path:
    """A copy of ``model`` whose sidecar records ``roi`` as edge-convert writes it (extra.roi);
    the model bytes are unchanged, so its sha256 still matches."""
    folder = tmp_path / "model"
    folder.mkdir()
    copy = folder / model.name
    shutil.copyfile(model, copy)
    side = json.loads(model.with_suffix(".json").read_text())
    side.setdefault("extra", {})["roi"] = roi
    copy.with_suffix(".json").write_text(json.dumps(side))
    return copy


def kaggle_frames(tmp_path: Path) -> tuple[Path, str]:
    """Links to a few real Kaggle frames and their masks (never copied)."""
    folder = require_data("kaggle-nerve", "train")
    files = sorted(p for p in folder.glob("*.png") if not p.stem.endswith("_mask"))
    out = tmp_path / "frames"
    out.mkdir()
    for f in files[:: max(1, len(files) // KAGGLE_FRAMES)][:KAGGLE_FRAMES]:
        for p in (f, f.with_name(f"{f.stem}_mask.png")):
            (out / p.name).symlink_to(p)
    return out, "kaggle"


def usgra_frames(tmp_path: Path) -> tuple[Path, str]:
    """Links to a few real USGRA frames (images/ + masks/ layout)."""
    root = require_data("usgra-seg")
    out = tmp_path / "frames"
    for sub in ("images", "masks"):
        (out / sub).mkdir(parents=True)
    files = sorted((root / "images").glob("*.png"))
    for f in files[:: max(1, len(files) // USGRA_FRAMES)][:USGRA_FRAMES]:
        (out / "images" / f.name).symlink_to(f)
        (out / "masks" / f.name).symlink_to(root / "masks" / f.name)
    return out, "folder"


def fixture_frames(tmp_path: Path) -> tuple[Path, str]:
    """The two-class fixture's synthetic frames (test_classes) with class-id masks."""
    out = tmp_path / "frames"
    for sub in ("images", "masks"):
        (out / sub).mkdir(parents=True)
    for name, img in (("a_left", LEFT), ("b_centre", CENTRE), ("c_empty", EMPTY)):
        cv2.imwrite(str(out / "images" / f"{name}.png"), img)
        cv2.imwrite(str(out / "masks" / f"{name}.png"), np.zeros_like(img))
    return out, "folder"


def image_dir(frames: Path, layout: str) -> Path:
    return frames / "images" if layout == "folder" else frames


# ------------------------------------------------------------------------------ the tools
def edge_run(model: Path, images: Path, *flags: str) -> subprocess.CompletedProcess:
    """edge-run itself (this checkout's code) on an image folder, headless and quiet."""
    argv = ["--images", str(images), "--headless", "--quiet", "--model", str(model), *flags]
    return subprocess.run([sys.executable, "-m", "edge.cli", *argv], capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, text=True,
                          timeout=EDGE_RUN_TIMEOUT_S)


def edge_run_masks(model: Path, images: Path, out: Path) -> dict[str, np.ndarray]:
    """edge-run --save-masks: 0/255 masks for a one-class model, class-id maps for a
    multi-class one."""
    done = edge_run(model, images, "--save-masks", str(out))
    assert done.returncode == 0, done.stderr
    return {p.stem: read_gray(p) for p in sorted(out.glob("*.png"))}


def frame_masks(model, masks: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """Model-size (H, W, C) decisions -> what edge-run writes for that frame."""
    st = model.settings
    per_class = [to_frame(masks[..., k], frame_hw, st.roi) for k in range(len(st.classes))]
    if len(per_class) == 1:
        return per_class[0]
    return class_id_map([ClassResult(c.id, c.name, c.color, c.safety, m, True, 0, False)
                         for c, m in zip(st.classes, per_class, strict=True)])


def labelled(model, frames: Path, layout: str):
    """The frames as edge-train eval reads them (train.datasets, the model's own crop)."""
    from train import datasets

    samples = datasets.find_samples(frames, layout, 1)
    return datasets.load_labelled(samples, model.settings.pre, 1), samples


def sizes(images: Path) -> dict[str, tuple[int, int]]:
    return {p.stem: read_gray(p).shape for p in sorted(images.glob("*.png"))
            if not p.stem.endswith("_mask")}


def evaluator_masks(model_path: Path, frames: Path, layout: str) -> dict[str, np.ndarray]:
    """edge-train eval's evaluator: train.modelio.open_seg_model + edge.model.evaluate.score."""
    from edge.model.evaluate import score
    from train.modelio import open_seg_model

    model = open_seg_model(model_path)
    data, _ = labelled(model, frames, layout)
    ev = score(model, data)
    hw = sizes(image_dir(frames, layout))
    return {n: frame_masks(model, ev.masks[i], hw[n]) for i, n in enumerate(data.names)}


def gate_masks(model_path: Path, frames: Path, layout: str, monkeypatch) -> dict:
    """The edge-convert gate (convert.validate.validate, as `edge-convert validate` calls it:
    each export opened with its own sidecar); the masks it scored, caught on their way."""
    import convert.validate as gate
    from train.modelio import open_seg_model

    model = open_seg_model(model_path)
    data, _ = labelled(model, frames, layout)
    seen, real = {}, gate.score

    def spy(scored, frames, **kw):
        ev = real(scored, frames, **kw)
        seen[id(scored)] = ev.masks
        return ev

    monkeypatch.setattr(gate, "score", spy)
    export = open_seg_model(model_path)
    gate.validate(model, model, {"export": export}, data, gate.GateConfig(min_dice=0.0))
    hw = sizes(image_dir(frames, layout))
    return {n: frame_masks(export, seen[id(export)][i], hw[n]) for i, n in enumerate(data.names)}


def browser_masks(model: Path, images: Path, tmp_path: Path) -> dict[str, np.ndarray]:
    """The exported browser runner (edge-run --export-web) on a plain static server."""
    from edge.view.web.site import export_web

    site = export_web(tmp_path / "site", model)
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html?backend=wasm"
    out = {}
    try:
        with app_page(tmp_path / "profile", url) as driver:
            for p in sorted(images.glob("*.png")):
                if p.stem.endswith("_mask"):
                    continue
                gray = read_gray(p)
                h, w = gray.shape
                b64 = base64.b64encode(np.ascontiguousarray(gray).tobytes()).decode()
                got = driver.execute_async_script(SEGMENT_JS, b64, w, h)
                assert "error" not in got, got
                out[p.stem] = np.frombuffer(base64.b64decode(got["map"]), np.uint8).reshape(h, w)
    finally:
        server.shutdown()
    return out


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:
        pass


# ------------------------------------------------------------------------------ the tests
CASES = {  # name: (model, its crop, frames, run it in the browser too)
    "nerve-web-roi": (WEB_MODEL, KAGGLE_ROI, kaggle_frames, True),
    "two-class-fixture-roi": (TWO_CLASS_TFLITE, FIXTURE_ROI, fixture_frames, True),
    "nerve-vessel-shipped-roi": (MODELS / "nerve_vessel_int8.tflite", USGRA_ROI, usgra_frames,
                                 False),
    "nerve-vessel-shipped": (MODELS / "nerve_vessel_int8.tflite", None, usgra_frames, False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_tool_gives_the_same_masks(case, tmp_path, monkeypatch):
    pytest.importorskip("ai_edge_litert")
    source, roi, make_frames, in_browser = CASES[case]
    frames, layout = make_frames(tmp_path)
    model = model_with_roi(tmp_path, source, roi) if roi else source
    images = image_dir(frames, layout)
    reference = edge_run_masks(model, images, tmp_path / "edge-run")
    assert reference and any(m.any() for m in reference.values()), "no mask to compare"
    tools = {"edge-train eval": evaluator_masks(model, frames, layout),
             "edge-convert gate": gate_masks(model, frames, layout, monkeypatch)}
    if in_browser and browser_missing() is None:
        tools["browser"] = browser_masks(model, images, tmp_path)
    for tool, masks in tools.items():
        assert masks.keys() == reference.keys(), tool
        for name, mask in masks.items():
            np.testing.assert_array_equal(mask, reference[name], err_msg=f"{tool}: {name}")
    if roi:  # the crop is applied: nothing is drawn outside it
        x, y, w, h = roi
        for mask in reference.values():
            outside = mask.copy()
            outside[y : y + h, x : x + w] = 0
            assert not outside.any()


def test_edge_run_applies_the_sidecars_roi(tmp_path):
    """The bug this fixes: edge-run ignored the crop a model was trained with. With the
    sidecar's ROI the masks differ from the uncropped run and stay inside the crop; --roi
    still wins over the sidecar."""
    frames, _ = fixture_frames(tmp_path)
    images = frames / "images"
    plain = edge_run_masks(TWO_CLASS_TFLITE, images, tmp_path / "plain")
    cropped_model = model_with_roi(tmp_path, TWO_CLASS_TFLITE, FIXTURE_ROI)
    cropped = edge_run_masks(cropped_model, images, tmp_path / "cropped")
    assert any((plain[n] != cropped[n]).any() for n in plain)
    report = tmp_path / "r.json"
    done = edge_run(cropped_model, images, "--roi", "0,0,96,64", "--report", str(report))
    assert done.returncode == 0, done.stderr
    config = json.loads(report.read_text())["config"]
    assert (config["roi"], config["roi_from"]) == ([0, 0, 96, 64], "--roi")


def test_a_sidecar_roi_that_does_not_fit_is_one_line_naming_the_fix(tmp_path):
    model = model_with_roi(tmp_path, TWO_CLASS_TFLITE, [0, 0, 500, 500])
    frames, _ = fixture_frames(tmp_path)
    done = edge_run(model, frames / "images")
    assert done.returncode == 2
    assert "sidecar's roi" in done.stderr and "--roi" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
