"""What the device tells the user about the model beyond its masks: a model converted below
the Dice floor (edge-convert --allow-low-dice) warns at start, in the report and in the web
view's status; and the nerve has one colour everywhere (the overlay, status.json, the clinic
view, the browser runner)."""

from __future__ import annotations

import http.client
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.cli import main
from edge.loop import open_model
from edge.model.classes import class_status
from edge.model.metadata import (
    DEFAULT_CLASSES,
    NERVE_COLOR,
    color_bgr,
    low_dice_warning,
    meta_from_dict,
)
from edge.model.postprocess import PostprocessConfig, Postprocessor
from edge.runconfig import RunConfig
from edge.view.overlay import draw_overlay
from edge.view.serve import ServeSink

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "edge" / "models" / "nerve_fixture_int8.tflite"
LOW_DICE = 0.4123
MIN_DICE = 0.5
TIMEOUT_S = 10.0


def low_dice_model(tmp_path: Path) -> Path:
    """The fixture model with the sidecar edge-convert writes under --allow-low-dice."""
    model = tmp_path / "trial_int8.tflite"
    shutil.copy(FIXTURE, model)
    sidecar = json.loads(FIXTURE.with_suffix(".json").read_text())
    extra = sidecar.setdefault("extra", {})
    extra["validation"] = {"per_image_dice": LOW_DICE}
    extra["gate"] = {"min_dice": MIN_DICE, "max_dice_drop": 0.02, "below_min_dice": True,
                     "warnings": ["int8: per-image Dice 0.4123 ... written anyway"]}
    model.with_suffix(".json").write_text(json.dumps(sidecar))
    return model


# ------------------------------------------------------------------ --allow-low-dice models
def test_low_dice_warning_names_the_dice_and_that_it_was_forced():
    meta = meta_from_dict({"extra": {"validation": {"per_image_dice": LOW_DICE},
                                     "gate": {"min_dice": MIN_DICE, "below_min_dice": True}}})
    text = low_dice_warning(meta)
    assert "0.4123" in text and "--min-dice 0.5" in text and "--allow-low-dice" in text
    passed = {"extra": {"gate": {"min_dice": MIN_DICE, "below_min_dice": False}}}
    assert low_dice_warning(meta_from_dict(passed)) is None
    assert low_dice_warning(meta_from_dict({})) is None  # no gate recorded (older sidecars)


def test_edge_run_warns_once_at_start_and_reports_it(tmp_path, capsys):
    report = tmp_path / "run.json"
    code = main(["--model", str(low_dice_model(tmp_path)), "--source", "phantom", "--headless",
                 "--quiet", "--max-frames", "2", "--report", str(report)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 0
    assert len(err) == 1, err  # --quiet hides the rest, never this
    assert err[0].startswith("edge-run: warning: trial_int8.tflite: converted below the Dice")
    assert "per-image Dice 0.4123" in err[0] and "--allow-low-dice" in err[0]
    warnings = json.loads(report.read_text())["model_warnings"]
    assert len(warnings) == 1 and "0.4123" in warnings[0]


def test_a_model_that_passed_the_gate_has_no_warning(tmp_path, capsys):
    report = tmp_path / "run.json"
    assert main(["--source", "phantom", "--headless", "--quiet", "--max-frames", "1",
                 "--report", str(report)]) == 0  # the shipped default (gate passed)
    assert "warning" not in capsys.readouterr().err
    assert json.loads(report.read_text())["model_warnings"] == []


def test_status_json_carries_the_models_warning(tmp_path):
    model = open_model(RunConfig(), low_dice_model(tmp_path))
    sink = ServeSink.from_spec("127.0.0.1:0", log=None, warnings=model.warnings)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=TIMEOUT_S)
        conn.request("GET", "/status.json")
        status = json.loads(conn.getresponse().read())
        conn.close()
    finally:
        sink.close()
    assert status["model_warnings"] == model.warnings and "0.4123" in status["model_warnings"][0]
    page = (REPO / "edge" / "view" / "static" / "index.html").read_text()
    assert "s.model_warnings" in page  # the clinic view shows them


# ------------------------------------------------------------------ one colour for the nerve
def nerve_only_result(classes=None):
    prob = np.zeros((16, 24), np.float32)
    prob[4:12, 6:18] = 0.9
    return Postprocessor(PostprocessConfig(), classes)([prob[None, :, :, None]], (64, 96))


def centre_colour(post, alpha=1.0) -> tuple[int, ...]:
    frame = np.full((64, 96, 3), 100, np.uint8)
    out = draw_overlay(frame, post.mask, alpha, None, post.classes, post.class_map)
    return tuple(int(v) for v in out[32, 48])


def test_status_json_names_the_colour_the_overlay_draws():
    post = nerve_only_result()
    status = class_status(post.classes)
    assert status["nerve"]["color"] == NERVE_COLOR == DEFAULT_CLASSES[0].color
    assert centre_colour(post) == color_bgr(NERVE_COLOR)  # alpha 1: the colour itself


def test_a_one_class_sidecar_colour_is_drawn_and_reported_alike():
    spec = meta_from_dict({"classes": [{"id": 1, "name": "nerve", "color": "#ffd400"}]})
    post = nerve_only_result(spec.classes)
    assert class_status(post.classes)["nerve"]["color"] == "#ffd400"
    assert centre_colour(post) == color_bgr("#ffd400")


def test_the_browser_runner_and_clinic_view_use_the_same_colour():
    """The browser runner draws the colour edge-run resolved (model/nerve.json, written by
    edge/view/web/site.py: no colour of its own); the clinic view takes it from status.json."""
    from edge.view.web.site import web_settings

    nerve_js = (REPO / "edge" / "view" / "web" / "app" / "nerve.js").read_text()
    app_js = (REPO / "edge" / "view" / "web" / "app" / "app.js").read_text()
    web = web_settings(REPO / "edge" / "models" / "nerve_default_web.tflite")
    assert web["classes"][web["nerve_index"]]["color"] == NERVE_COLOR
    assert "nerveColor: nerve.color" in nerve_js and "rgb(engine.cfg.nerveColor)" in app_js
    page = (REPO / "edge" / "view" / "static" / "index.html").read_text()
    assert "(s.classes || {}).nerve" in page and "nerve.color" in page
    colours = set(re.findall(r"#[0-9a-fA-F]{6}\b", nerve_js + app_js))
    assert colours <= {NERVE_COLOR}, colours  # no other nerve colour restated


@pytest.mark.parametrize("path", ["docs/edge.md"])
def test_docs_name_the_nerve_colour(path):
    assert NERVE_COLOR in (REPO / path).read_text()
