"""scripts/check_arm64*.py without a root: Dice and agreement on hand-made masks, the verdict
that makes `make check-arm64` fail (identical inputs; identical masks for int8 models; float
models' differing pixels within 1e-5 of the threshold), skip reasons, progress lines, the
host-settings parsing. The real emulated run is `make check-arm64` (part of `make test`); its
recorded report is benchmarks/results/arm64.json."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))
check = importlib.import_module("check_arm64")
cmp = importlib.import_module("check_arm64_compare")
board = importlib.import_module("check_arm64_root")
install = importlib.import_module("check_arm64_install")
staging = importlib.import_module("check_arm64_frames")

HW = (60, 80)


def disc(cx: int, r: int = 15) -> np.ndarray:
    mask = np.zeros(HW, np.uint8)
    cv2.circle(mask, (cx, 30), r, 255, -1)
    return mask


def write_masks(folder: Path, masks: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    for name, mask in masks.items():
        cv2.imwrite(str(folder / name), mask)
    return folder


def test_dice_on_hand_made_masks():
    a = np.zeros((4, 4), bool)
    a[:2] = True  # 8 px
    b = np.zeros((4, 4), bool)
    b[1:3] = True  # 8 px, 4 shared
    assert cmp.dice(a, b) == pytest.approx(0.5)
    assert cmp.dice(a, a) == 1.0
    assert cmp.dice(np.zeros_like(a), np.zeros_like(a)) == 1.0  # both empty: agree
    assert cmp.dice(a, np.zeros_like(a)) == 0.0


def test_class_id_masks_are_compared_per_class():
    ref = np.zeros((4, 4), np.uint8)
    ref[:2] = 1  # nerve, 8 px
    ref[3] = 2  # vessel, 4 px
    got = ref.copy()
    got[3] = 0  # arm64 lost the vessel: nerve agrees (1.0), vessel does not (0.0)
    assert cmp.label_dice(ref, got) == pytest.approx(0.5)
    assert cmp.label_dice(ref, ref) == 1.0
    assert cmp.label_dice(ref * 0, ref * 0) == 1.0
    binary = (ref > 0).astype(np.uint8) * 255  # a nerve-only 0/255 mask: one label
    assert cmp.label_dice(binary, binary) == 1.0


def test_compare_dirs_counts_identical_outline_and_missing(tmp_path):
    x86 = write_masks(tmp_path / "x86", {"a.png": disc(40), "b.png": disc(40),
                                         "c.png": disc(40)})
    shifted = disc(40)
    shifted[30, 40 + 15] = 0  # one outline pixel lost: a kernel-rounding-sized difference
    arm = write_masks(tmp_path / "arm", {"a.png": disc(40), "b.png": shifted})
    got = cmp.compare_dirs(x86, arm)
    assert got["frames"] == 3 and got["bit_identical"] == 1
    assert got["missing_on_arm64"] == ["c.png"]  # counted as Dice 0
    assert got["min_dice"] == 0.0 and got["mean_dice"] < 0.7
    assert got["differing_pixels"] == 1 and got["differing_pixels_on_outline"] == 1


def entry(quantized: bool, same_inputs=30, same_masks=30, worst=None, model_masks=None):
    return {"frames": 30, "probe_frames": 30, "missing_on_arm64": [], "quantized": quantized,
            "identical_inputs": same_inputs, "bit_identical": same_masks,
            "differing_pixels": 0 if same_masks == 30 else 12,
            "identical_model_masks": same_masks if model_masks is None else model_masks,
            "max_threshold_distance": worst}


def test_verdict_int8_needs_identical_inputs_and_masks():
    assert cmp.verdict(entry(True)) == (True, "30/30 identical inputs, 30/30 identical masks, "
                                              "0 differing pixels")
    passed, line = cmp.verdict(entry(True, same_masks=29))
    assert not passed and "must be bit-identical" in line
    passed, line = cmp.verdict(entry(True, same_inputs=29))
    assert not passed and "inputs differ" in line
    assert not cmp.verdict({**entry(True), "frames": 0})[0]
    assert not cmp.verdict({**entry(True), "probe_frames": 29})[0]
    assert not cmp.verdict({**entry(True), "missing_on_arm64": ["a.png"]})[0]


def test_verdict_float_allows_flips_next_to_the_threshold_only():
    passed, line = cmp.verdict(entry(False, same_masks=28, worst=3e-7))
    assert passed and "max distance to the threshold 3.00e-07" in line
    passed, line = cmp.verdict(entry(False, same_masks=28, worst=2e-5))
    assert not passed and "> 1e-05" in line
    assert not cmp.verdict(entry(False, same_inputs=29))[0]
    # identical at model size but not at frame size: the upscale is not exact
    assert not cmp.verdict(entry(False, same_masks=28, worst=None, model_masks=30))[0]


def test_compare_pipeline_measures_the_distance_to_the_threshold(tmp_path):
    gray = np.zeros((4, 4), np.uint8)
    prob = np.full((4, 4, 1), 0.2, np.float32)
    prob[0, 0, 0] = 0.5 + 4e-6  # x86: just above the threshold
    mask = (prob > 0.5).astype(np.uint8)
    arm_prob = prob.copy()
    arm_prob[0, 0, 0] = 0.5 - 1e-6  # arm64: just below
    common = {"thresholds": np.array([0.5]), "quantized": np.array(False)}
    np.savez(tmp_path / "x86.npz", **common, **{"f/input": gray, "f/prob": prob, "f/mask": mask})
    np.savez(tmp_path / "arm.npz", **common, **{"f/input": gray, "f/prob": arm_prob,
                                                "f/mask": (arm_prob > 0.5).astype(np.uint8)})
    got = cmp.compare_pipeline(tmp_path / "x86.npz", tmp_path / "arm.npz")
    assert got["identical_inputs"] == 1 and got["identical_model_masks"] == 0
    assert got["differing_model_pixels"] == 1 and not got["quantized"]
    assert got["max_threshold_distance"] == pytest.approx(4e-6, abs=1e-7)


def report_with(exit_code: int, passed: bool, from_system: bool = True) -> dict:
    agree = {**entry(True), "passed": passed, "line": "..."}
    return {"arm64": {"exit_codes": {"phantom": exit_code},
                      "venv_imports": {"from_system": from_system, "numpy_in_venv": []}},
            "x86": {"exit_codes": {"phantom": 0}},
            "agreement": {"phantom-frames": {"nerve_default_int8.tflite": agree}},
            "timings_s": {}}


@pytest.mark.parametrize("exit_code, passed, from_system, expected", [
    (0, True, True, check.EXIT_PASS), (1, True, True, check.EXIT_FAIL),
    (0, False, True, check.EXIT_FAIL), (0, True, False, check.EXIT_FAIL)])
def test_main_fails_on_a_wrong_exit_code_a_mask_or_pips_own_numpy(monkeypatch, tmp_path,
                                                                  exit_code, passed,
                                                                  from_system, expected):
    monkeypatch.setattr(board, "preflight", lambda: None)
    monkeypatch.setattr(check, "check", lambda args: report_with(exit_code, passed, from_system))
    (tmp_path / "kaggle-nerve" / "train").mkdir(parents=True)
    out = tmp_path / "r.json"
    assert check.main(["--report", str(out), "--data", str(tmp_path)]) == expected
    assert json.loads(out.read_text())["agreement"]


def test_main_skips_with_one_line_where_arm64_cannot_run(monkeypatch, capsys):
    monkeypatch.setattr(board.os, "geteuid", lambda: 1000)
    assert check.main(["--report", "/nonexistent/r.json"]) == check.EXIT_PASS
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "skipped" in out[0] and "root" in out[0]


def test_binfmt_line_keeps_the_fix_binary_flag():
    line = board.binfmt_line()
    assert line.startswith(":qemu-aarch64:M:") and "F" in line.rsplit(":", 1)[-1]
    assert board.entry_flags("enabled\ninterpreter /x\nflags: POF\noffset 0\n") == "POF"
    assert board.entry_flags("enabled\n") == ""


def test_apt_mirror_from_both_source_formats(tmp_path):
    deb822 = tmp_path / "debian.sources"
    deb822.write_text("Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\n"
                      "Types: deb\nURIs: http://deb.debian.org/debian-security\n")
    oneline = tmp_path / "sources.list"
    oneline.write_text("deb [arch=amd64] http://ftp.example.org/debian/ bookworm main\n")
    other = tmp_path / "other.list"
    other.write_text("deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n")
    assert board.apt_mirror([other, deb822]) == "http://mirror.example/debian"
    assert board.apt_mirror([oneline]) == "http://ftp.example.org/debian"
    assert board.apt_mirror([other]) == board.DEFAULT_MIRROR


def test_local_paths_in_pip_settings():
    value = "file:///opt/pypi/simple https://pypi.org/simple /opt/wheels"
    assert install.local_paths(value) == ["/opt/pypi/simple", "/opt/wheels"]


def test_pick_frames_skips_masks_and_spreads_over_names(tmp_path):
    for i in range(10):
        (tmp_path / f"1_{i}.png").touch()
        (tmp_path / f"1_{i}_mask.png").touch()
    picked = staging.pick_frames(tmp_path, 5)
    assert len(picked) == 5 and not any(p.stem.endswith("_mask") for p in picked)
    assert picked[0].name == "1_0.png" and picked[1].name == "1_2.png"
    with pytest.raises(FileNotFoundError):
        staging.pick_frames(tmp_path, 11)


def test_shipped_models_are_every_model_but_the_fixtures(tmp_path):
    models = tmp_path / "edge" / "models"
    models.mkdir(parents=True)
    for name in ("nerve_default_int8.tflite", "nerve_default.onnx", "nerve_default_web.tflite",
                 "nerve_vessel_int8.tflite", "nerve_fixture_int8.tflite", "nerve_default.json"):
        (models / name).touch()
    assert check.shipped_models(tmp_path) == ["nerve_default_int8.tflite", "nerve_default.onnx",
                                              "nerve_default_web.tflite",
                                              "nerve_vessel_int8.tflite"]


def test_compare_outputs_per_kernel_set(tmp_path):
    same = np.zeros((1, 4, 4, 1), np.int8)
    off_by_one = same.copy()
    off_by_one[0, 0, 0, 0] = 1
    np.savez(tmp_path / "x86.npz", **{"AUTO/a": same, "AUTO/b": same, "BUILTIN_REF/a": same})
    np.savez(tmp_path / "arm.npz", **{"AUTO/a": same, "AUTO/b": off_by_one,
                                      "BUILTIN_REF/a": same})
    got = cmp.compare_outputs(tmp_path / "x86.npz", tmp_path / "arm.npz")
    assert got["AUTO"]["outputs"] == 2 and got["AUTO"]["bit_identical"] == 1
    assert got["AUTO"]["elements_differing"] == 1 and got["AUTO"]["max_abs_diff"] == 1.0
    assert got["BUILTIN_REF"]["bit_identical"] == 1 and got["BUILTIN_REF"]["max_abs_diff"] == 0


@pytest.mark.parametrize("cpu, part", [("cortex-a72", "0xd08"), ("cortex-a76", "0xd0b")])
def test_fake_cpuinfo_names_the_boards_arm_core(cpu, part):
    text = board.fake_cpuinfo(cpu, 3)
    blocks = [b for b in text.split("\n\n") if b.strip()]
    assert len(blocks) == 3 and all(f"CPU part\t: {part}" in b for b in blocks)
    assert all("CPU implementer\t: 0x41" in b for b in blocks)  # Arm Ltd.


def test_explain_quotes_the_measured_stages():
    entry = {"outputs": 5, "bit_identical": 5, "max_abs_diff": 0.0}
    off = {"outputs": 5, "bit_identical": 0, "max_abs_diff": 2.0}
    raw = {"m.tflite": {"AUTO": entry}, "opencv": {"resize": off, "upscale": off}}
    lines = cmp.explain("m.tflite", raw)
    assert any("AUTO: 5/5 bit-identical" in line for line in lines)
    assert any("OpenCV resize: 0/5 bit-identical, max gap 2" in line for line in lines)
    assert any("cv2_linear_exact: not measured" in line for line in lines)


def test_conclusion_names_the_stage_that_differs():
    same = {"outputs": 5, "bit_identical": 5, "max_abs_diff": 0.0}
    off = {"outputs": 5, "bit_identical": 0, "max_abs_diff": 2.0}
    cv_off = {"opencv": {"resize": off, "upscale": off}}
    cv_same = {"opencv": {"resize": same, "upscale": same}}
    assert "through edge's OpenCV" in cmp.conclusion("m.tflite", {"m.tflite": {"AUTO": same},
                                                                  **cv_off})
    assert cmp.conclusion("m.onnx", {"m.onnx": {"CPU": off}, **cv_same}).startswith(
        "the model's kernels (CPU) differ")
    assert cmp.conclusion("m.onnx", {"m.onnx": {"CPU": off}, **cv_off}).startswith("both")
    assert cmp.conclusion("m.onnx", {}) == "not probed"


def test_the_default_report_is_not_a_tracked_file():
    assert check.DEFAULT_REPORT.is_relative_to(Path.home() / ".cache")
    assert "benchmarks/results/arm64.json" not in check.parse_args([]).report.as_posix()
    makefile = (SCRIPTS.parent / "Makefile").read_text()
    default = [ln for ln in makefile.splitlines() if ln.startswith("ARM64_REPORT ?=")]
    assert default and "benchmarks/results" not in default[0]


def test_a_long_step_prints_progress_lines(monkeypatch, capsys):
    monkeypatch.setattr(board, "PROGRESS_EVERY_S", 0.2)
    got = board.run_with_progress([sys.executable, "-c", "import time; print('step one', "
                                   "flush=True); time.sleep(2); print('done')"], "a long step")
    assert got.returncode == 0 and got.stdout.splitlines() == ["step one", "done"]
    progress = [ln for ln in capsys.readouterr().out.splitlines() if "a long step" in ln]
    assert len(progress) >= 2 and any("step one" in line for line in progress)


def test_a_root_built_with_another_package_list_is_rebuilt(tmp_path):
    stamp = {"suite": "bookworm", "packages": "python3,python3-venv,python3-pip,ca-certificates"}
    (tmp_path / board.BUILT_STAMP).write_text(json.dumps(stamp))
    assert not board.is_built(tmp_path)  # built before python3-numpy was in the list
    (tmp_path / board.BUILT_STAMP).write_text(json.dumps({**stamp,
                                                         "packages": board.ROOT_PACKAGES}))
    assert board.is_built(tmp_path) and "python3-numpy" in board.ROOT_PACKAGES


def test_the_pi_extra_keeps_apts_numpy():
    import tomllib

    extras = tomllib.loads((SCRIPTS.parent / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert "numpy>=1.23.2,<2" in extras["pi"]  # apt's 1.24 satisfies it: pip adds none
    assert any(r.startswith("opencv-python-headless") and "<4.12" in r for r in extras["pi"])
    assert "pi" in install.PIP_EXTRAS.split(",")


@pytest.mark.parametrize("model, quantized", [("nerve_fixture_int8.tflite", True),
                                              ("nerve_fixture.onnx", False)])
def test_pipeline_probe_against_itself_is_identical(tmp_path, model, quantized):
    """The probe as both machines run it (here: x86 twice): inputs, probabilities and
    model-size masks per frame, which compare_model then finds identical."""
    pytest.importorskip("onnxruntime")
    frames = tmp_path / "frames"
    staging.write_phantom_frames(frames, 3)
    path = SCRIPTS.parent / "edge" / "models" / model
    for side in ("x86", "arm64"):
        jobs = tmp_path / f"jobs.{side}.json"
        jobs.write_text(json.dumps([{"frames": str(frames), "model": str(path),
                                     "out": str(tmp_path / f"{side}.npz")}]))
        probe = importlib.import_module("check_arm64_probe")
        probe.run_pipeline(jobs)
        write_masks(tmp_path / "masks" / side, {"a.png": disc(40)})
    got = cmp.compare_model(tmp_path / "masks" / "x86", tmp_path / "masks" / "arm64",
                            tmp_path / "x86.npz", tmp_path / "arm64.npz")
    assert got["probe_frames"] == 3 and got["identical_inputs"] == 3
    assert got["identical_model_masks"] == 3 and got["quantized"] is quantized
    assert got["max_threshold_distance"] is None
