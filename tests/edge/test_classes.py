"""Multi-class models (issue 16) with a tiny 2-class stand-in whose channels are known
functions of the pixel (scripts/make_classes_fixture.py): gray 128 is nerve only, gray 230 is
nerve and vessel (vessel wins), 0 is background. No TensorFlow."""

from __future__ import annotations

import http.client
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import edge.view.render
from edge.cli import main
from edge.model.metadata import DEFAULT_CLASSES, ModelMeta, meta_from_dict, meta_to_dict
from edge.model.postprocess import (
    CENTRE_BAND_FRAC,
    PostprocessConfig,
    Postprocessor,
    near_centre_line,
)
from edge.model.settings import Overrides, resolve_classes
from edge.types import FrameResult
from edge.view.overlay import WARNING_BGR, draw_overlay
from edge.view.serve import ServeSink

FIXTURES = Path(__file__).parent / "fixtures"
TWO_CLASS = FIXTURES / "two_class.onnx"
TWO_CLASS_TFLITE = FIXTURES / "two_class_float.tflite"  # the same function, float32 TFLite
FRAME_HW = (64, 96)  # 2x the fixture's 32x48 input: region edges stay on even pixels
NERVE_GRAY, BOTH_GRAY = 128, 230  # nerve only / nerve + vessel (see the module doc)
NERVE, VESSEL = 1, 2  # class ids in the fixture's sidecar
CLASSES = meta_from_dict(json.loads(TWO_CLASS.with_suffix(".json").read_text())).classes


def frame(*regions: tuple[int, int, int, int, int]) -> np.ndarray:
    """A black frame with (y0, y1, x0, x1, gray) rectangles."""
    img = np.zeros(FRAME_HW, np.uint8)
    for y0, y1, x0, x1, gray in regions:
        img[y0:y1, x0:x1] = gray
    return img


# Left: a nerve (gray 128) with a vessel (230) inside it, both far from the centre line.
LEFT = frame((8, 56, 0, 32, NERVE_GRAY), (16, 40, 4, 20, BOTH_GRAY))
# Centre: a vessel on the vertical centre line (x = 48), a nerve on the right.
CENTRE = frame((16, 40, 40, 56, BOTH_GRAY), (16, 48, 68, 92, NERVE_GRAY))
EMPTY = frame()


def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for name, img in (("a_left", LEFT), ("b_centre", CENTRE), ("c_empty", EMPTY)):
        cv2.imwrite(str(folder / f"{name}.png"), img)
    return folder


def model_with_sidecar(tmp_path: Path, sidecar: dict | None) -> Path:
    """The 2-class model copied with ``sidecar`` beside it (None: no sidecar at all)."""
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    model = folder / TWO_CLASS.name
    shutil.copy(TWO_CLASS, model)
    if sidecar is not None:
        model.with_suffix(".json").write_text(json.dumps(sidecar))
    return model


def fixture_sidecar(**changes) -> dict:
    d = json.loads(TWO_CLASS.with_suffix(".json").read_text())
    d.pop("sha256")  # the copies below may change the sidecar, not the model
    d.update(changes)
    return d


# ------------------------------------------------------------------------------ the sidecar
def test_sidecar_classes_parsed_in_order_and_default_is_nerve_only():
    assert [(c.id, c.name, c.safety) for c in CLASSES] == [(1, "nerve", False), (2, "vessel", True)]
    assert CLASSES[1].bgr == (0x30, 0x30, 0xFF)  # "#ff3030" is RGB; OpenCV wants BGR
    assert ModelMeta().classes is None and ModelMeta().class_list == DEFAULT_CLASSES
    assert "classes" not in meta_to_dict(ModelMeta())  # a nerve-only sidecar is unchanged
    again = meta_from_dict(meta_to_dict(ModelMeta(classes=CLASSES)))
    assert again.classes == CLASSES


BAD_CLASSES = {
    "empty list": ([], "field 'classes' is []"),
    "not a list": ({"id": 1}, "field 'classes' is"),
    "bad colour": ([{"id": 1, "name": "nerve", "color": "green"}], "'classes[0].color'"),
    "id 0": ([{"id": 0, "name": "nerve", "color": "#00ff00"}], "'classes[0].id' is 0"),
    "repeated id": ([{"id": 1, "name": "a", "color": "#00ff00"},
                     {"id": 1, "name": "b", "color": "#ff0000"}], "'classes[1].id' is 1"),
    "repeated name": ([{"id": 1, "name": "a", "color": "#00ff00"},
                       {"id": 2, "name": "a", "color": "#ff0000"}], "'classes[1].name'"),
    "safety text": ([{"id": 1, "name": "a", "color": "#00ff00", "safety": "yes"}],
                    "'classes[0].safety' is \"yes\""),
    "typo key": ([{"id": 1, "name": "a", "color": "#00ff00", "treshold": 0.3}],
                 "'classes[0].treshold'"),
    "no name": ([{"id": 1, "color": "#00ff00"}], "'classes[0].name' is null"),
    "bad threshold": ([{"id": 1, "name": "a", "color": "#00ff00", "threshold": 2}],
                      "'classes[0].threshold' is 2"),
}


@pytest.mark.parametrize("name", sorted(BAD_CLASSES))
def test_malformed_classes_exit_2_with_one_line(name, tmp_path, capsys):
    classes, expected = BAD_CLASSES[name]
    model = model_with_sidecar(tmp_path, fixture_sidecar(classes=classes))
    code = main(["--model", str(model), "--images", str(image_folder(tmp_path)), "--headless",
                 "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and expected in err and "two_class.json" in err


@pytest.mark.parametrize("classes, expected", [
    (None, 'has a 1xHxWx2 mask output but its sidecar two_class.json has no "classes" list'),
    ([{"id": 1, "name": "nerve", "color": "#00ff00"}, {"id": 2, "name": "vessel",
      "color": "#ff0000"}, {"id": 3, "name": "pleura", "color": "#0000ff"}],
     "has a 1xHxWx2 mask output but its sidecar two_class.json lists 3 class(es)"),
])
def test_channel_count_must_match_the_classes(classes, expected, tmp_path, capsys):
    sidecar = fixture_sidecar(classes=classes)
    model = model_with_sidecar(tmp_path, sidecar)
    code = main(["--model", str(model), "--images", str(image_folder(tmp_path)), "--headless",
                 "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and expected in err


# ------------------------------------------------------------------------------ post-processing
def two_channel(nerve: np.ndarray, vessel: np.ndarray) -> list[np.ndarray]:
    return [np.stack([nerve, vessel], axis=-1)[None].astype(np.float32)]


def test_per_class_masks_and_safety_overrides_nerve_in_the_class_map():
    hw = (16, 24)
    nerve, vessel = np.zeros(hw, np.float32), np.zeros(hw, np.float32)
    nerve[2:10, 2:10] = 0.9  # 64 px
    vessel[6:14, 6:14] = 0.9  # 64 px, 16 of them over the nerve
    res = Postprocessor(PostprocessConfig(), CLASSES)(two_channel(nerve, vessel), hw)
    by_name = {c.name: c for c in res.classes}
    assert by_name["nerve"].area_px == 64 and by_name["vessel"].area_px == 64  # own masks
    assert res.detected and res.area_px == 64 and np.array_equal(res.mask,
                                                                 by_name["nerve"].mask)
    assert res.class_map[7, 7] == VESSEL  # overlap: the safety structure wins
    assert res.class_map[3, 3] == NERVE and res.class_map[12, 12] == VESSEL
    assert res.class_map[0, 0] == 0 and set(np.unique(res.class_map)) == {0, NERVE, VESSEL}


def test_per_class_threshold_and_min_area_and_flag_overrides():
    hw = (16, 24)
    nerve, vessel = np.full(hw, 0.45, np.float32), np.zeros(hw, np.float32)
    vessel[0:2, 0:2] = 0.9  # a 4 px speck
    classes = (CLASSES[0].__class__(**{**CLASSES[0].__dict__, "threshold": 0.4}),
               CLASSES[1].__class__(**{**CLASSES[1].__dict__, "min_area": 10}))
    res = Postprocessor(PostprocessConfig(), classes)(two_channel(nerve, vessel), hw)
    assert [c.detected for c in res.classes] == [True, False]  # 0.45 > 0.4; speck < 10 px
    flags = resolve_classes(classes, 0.5, 0, Overrides(threshold=0.5, min_area=0))
    res = Postprocessor(PostprocessConfig(), flags)(two_channel(nerve, vessel), hw)
    assert [c.detected for c in res.classes] == [False, True]  # the flags win


def test_centre_line_rule():
    width = 100
    band = int(CENTRE_BAND_FRAC * width)
    mask = np.zeros((10, width), np.uint8)
    mask[:, : width // 2 - band - 1] = 255  # ends just outside the band
    assert not near_centre_line(mask)
    mask[5, width // 2 - band + 1] = 255  # one pixel inside
    assert near_centre_line(mask)
    # With an ROI the band is around the ROI's centre line (the scanner's image region).
    roi_mask = np.zeros((10, 200), np.uint8)
    roi_mask[:, 150] = 255
    assert near_centre_line(roi_mask, roi=(100, 0, 100, 10))
    assert not near_centre_line(roi_mask)


def test_nerve_only_postprocessing_is_unchanged():
    hw = (16, 24)
    prob = np.zeros(hw, np.float32)
    prob[2:10, 2:10] = 0.9
    cfg = PostprocessConfig(min_area=5)
    res = Postprocessor(cfg)([prob[None, :, :, None]], (32, 48))
    assert res.class_map is None and not res.safety_warning
    assert [(c.name, c.detected, c.area_px) for c in res.classes] == [("nerve", True,
                                                                       res.area_px)]
    assert res.classes[0].mask is res.mask and set(np.unique(res.mask)) == {0, 255}


# ------------------------------------------------------------------------------ the whole run
@pytest.mark.parametrize("model", [TWO_CLASS, TWO_CLASS_TFLITE], ids=["onnx", "tflite"])
def test_two_class_run_writes_class_id_masks_and_per_class_report(model, tmp_path, capsys):
    masks, report = tmp_path / "masks", tmp_path / "r.json"
    code = main(["--model", str(model), "--images", str(image_folder(tmp_path)),
                 "--headless", "--save-masks", str(masks), "--report", str(report)])
    assert code == 0
    assert "classes nerve #ffc800, vessel #ff3030 (safety)" in capsys.readouterr().out
    left = cv2.imread(str(masks / "a_left.png"), cv2.IMREAD_UNCHANGED)
    assert left.shape == FRAME_HW and left.dtype == np.uint8
    assert set(np.unique(left)) == {0, NERVE, VESSEL}
    assert left[28, 12] == VESSEL  # both fire: the vessel wins
    assert left[50, 24] == NERVE and left[2, 2] == 0 and left[30, 70] == 0
    centre = cv2.imread(str(masks / "b_centre.png"), cv2.IMREAD_UNCHANGED)
    assert centre[28, 48] == VESSEL and centre[30, 80] == NERVE
    assert not cv2.imread(str(masks / "c_empty.png"), cv2.IMREAD_UNCHANGED).any()
    data = json.loads(report.read_text())
    assert data["safety_warning_frames"] == 1  # only the centre image
    nerve, vessel = data["classes"]["nerve"], data["classes"]["vessel"]
    assert (nerve["frames"], nerve["frames_detected"], vessel["frames_detected"]) == (3, 2, 2)
    assert vessel["safety"] and vessel["frames_near_centre"] == 1 and vessel["id"] == VESSEL
    assert vessel["max_area"] == pytest.approx(16 * 24, rel=0.1)  # the 16x24 px bright block
    assert data["nerve_area"]["frames_with_nerve"] == 2  # the nerve fields are still there


def test_status_line_names_each_class_and_the_warning(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(edge.view.render, "STATUS_EVERY_S", 0.0)  # a line every frame
    assert main(["--model", str(TWO_CLASS), "--images", str(image_folder(tmp_path)),
                 "--headless"]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("edge-run: frame")]
    assert len(lines) == 3
    assert "nerve yes" in lines[0] and "vessel yes" in lines[0] and "SAFETY" not in lines[0]
    assert lines[1].endswith("vessel yes (384 px), SAFETY vessel near centre line")
    assert lines[2].endswith("nerve no, vessel no")


def test_nerve_only_model_still_writes_0_255_masks(tmp_path):
    masks, report = tmp_path / "masks", tmp_path / "r.json"
    assert main(["--images", str(image_folder(tmp_path)), "--headless", "--quiet",
                 "--save-masks", str(masks), "--report", str(report)]) == 0
    for png in masks.iterdir():
        assert set(np.unique(cv2.imread(str(png), cv2.IMREAD_UNCHANGED))) <= {0, 255}
    data = json.loads(report.read_text())
    assert list(data["classes"]) == ["nerve"] and data["safety_warning_frames"] == 0


# ------------------------------------------------------------------------------ the overlay
def test_overlay_colours_each_class_and_shows_the_warning_only_when_near():
    post_left = Postprocessor(PostprocessConfig(), CLASSES)(
        two_channel((LEFT > 77).astype(np.float32), (LEFT > 153).astype(np.float32)), FRAME_HW)
    gray = cv2.cvtColor(np.full(FRAME_HW, 40, np.uint8), cv2.COLOR_GRAY2BGR)
    big = [cv2.resize(img, (FRAME_HW[1] * 4, FRAME_HW[0] * 4), interpolation=cv2.INTER_NEAREST)
           for img in (gray, post_left.class_map)]
    classes = [c.__class__(**{**c.__dict__, "mask": cv2.resize(
        c.mask, big[0].shape[1::-1], interpolation=cv2.INTER_NEAREST)})
        for c in post_left.classes]
    out = draw_overlay(big[0], classes[0].mask, 1.0, None, classes, big[1], warning=False)
    assert tuple(out[28 * 4, 12 * 4]) == (0x30, 0x30, 0xFF)  # vessel red (BGR), over the nerve
    assert tuple(out[50 * 4, 24 * 4]) == (0x00, 0xC8, 0xFF)  # nerve #ffc800
    assert not (out[-3:, :] == WARNING_BGR).all(axis=-1).any()  # no banner
    near = [c.__class__(**{**c.__dict__, "near_centre": c.safety}) for c in classes]
    warned = draw_overlay(big[0], classes[0].mask, 1.0, None, near, big[1], warning=True)
    assert (warned[-2, :] == WARNING_BGR).all(axis=-1).mean() > 0.5  # the red banner


# ------------------------------------------------------------------------------ the clinic view
def served_result(image: np.ndarray) -> FrameResult:
    """What the loop hands the web view for ``image``, through the 2-class post-processing."""
    post = Postprocessor(PostprocessConfig(), CLASSES)(
        two_channel((image > 77).astype(np.float32), (image > 153).astype(np.float32)),
        FRAME_HW)
    return FrameResult(frame_index=0, name="0", frame=cv2.cvtColor(image, cv2.COLOR_GRAY2BGR),
                       mask=post.mask, detected=post.detected, area_px=post.area_px,
                       classes=post.classes, class_map=post.class_map,
                       safety_warning=post.safety_warning)


def get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200, path
        return response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("image, warning", [(CENTRE, True), (LEFT, False)])
def test_status_json_has_per_class_results_and_the_warning(image, warning):
    sink = ServeSink.from_spec("127.0.0.1:0", log=None)
    try:
        sink.write(served_result(image))
        status = json.loads(get(sink.port, "/status.json"))
        frame = cv2.imdecode(np.frombuffer(get(sink.port, "/frame.jpg?alpha=1"), np.uint8),
                             cv2.IMREAD_COLOR)
    finally:
        sink.close()
    assert list(status["classes"]) == ["nerve", "vessel"] and status["safety_warning"] is warning
    vessel = status["classes"]["vessel"]
    assert vessel == {"id": VESSEL, "color": "#ff3030", "safety": True, "detected": True,
                      "area_px": 16 * 24, "near_centre": warning}
    assert status["detected"] is True and status["area_px"] == status["classes"]["nerve"][
        "area_px"]  # today's nerve fields stay
    bottom = frame[-2, :].astype(int)  # the banner row, JPEG-approximate
    red = (bottom[:, 2] > 150) & (bottom[:, 0] < 80) & (bottom[:, 1] < 80)
    assert bool(red.mean() > 0.5) is warning
