"""edge-train --init-weights default|RUN|FILE: the packaged float model and its sidecar, the
architecture read from the init model (sidecar or run config), explicit flags that disagree
refused with one line naming the flag, both values and the fix, and edge-train export-init."""

from __future__ import annotations

import json
import shutil

import pytest

from edge.model.metadata import load_meta, sha256_file, sidecar_path
from train.cli import main
from train.config import DEFAULT_MODEL
from train.initmodel import (
    DEFAULT_INIT,
    InitModel,
    merge_architecture,
    packaged_init,
    resolve_init,
)

TINY_ARCH = ["--input-size", "32x48", "--base-filters", "4", "--depth", "2"]
SPEED = ["--batch", "4", "--max-steps-per-epoch", "2", "--val-fraction", "0.34", "--progress",
         "0", "--threads", "1", "--epochs", "1"]
MAX_PACKAGED_MB = 5.0


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("edge-train: error:")]
    return line


# ---------------------------------------------------------------- the packaged model


def test_packaged_init_is_small_and_its_sidecar_describes_it():
    path = packaged_init()
    assert path.suffix == ".keras" and path.stat().st_size < MAX_PACKAGED_MB * 1e6
    meta = load_meta(path)
    assert meta.sha256 == sha256_file(path)  # the sidecar is of THIS file
    assert set(meta.extra["model"]) == set(DEFAULT_MODEL)  # edge-train's "model" dict, whole
    assert meta.input_hw and meta.scale > 0 and 0 < meta.threshold < 1
    assert meta.extra["training_data"]["data_dir"] and meta.extra["command"]
    init = resolve_init(DEFAULT_INIT)
    assert init.path == path and init.model == meta.extra["model"]
    assert init.described_by == str(sidecar_path(path))


def test_packaged_init_loads_into_the_model_its_sidecar_describes():
    from train.build import build_model, load_init_weights
    from train.config import TrainConfig
    from train.modelio import load_keras

    init = resolve_init(DEFAULT_INIT)
    model = build_model(TrainConfig(data="-", input_hw=init.input_hw, model=init.model))
    load_init_weights(model, DEFAULT_INIT)
    shipped = load_keras(init.path)
    assert model.count_params() == shipped.count_params()
    assert all((a == b).all() for a, b in zip(model.get_weights(), shipped.get_weights(),
                                              strict=True))


# ---------------------------------------------------------------- flags vs the init model


def other_value(dest: str, init) -> tuple[list[str], str, str]:
    """(flags, what the error names, the fix it gives) for a value of ``dest`` that differs
    from the packaged model's, whatever model ships (the lead may replace it)."""
    m = init.model
    if dest == "base_filters":
        v = m["base_filters"] + 4
        return (["--base-filters", str(v)], f"--base-filters {v}",
                f"drop --base-filters or pass --base-filters {m['base_filters']}")
    if dest == "arch":
        v = next(a for a in ("attention", "unet", "unetpp") if a != m.get("arch", "unet"))
        return (["--arch", v], f"--arch {v}",
                f"drop --arch or pass --arch {m.get('arch', 'unet')}")
    flag = "--separable" if not m.get("separable") else "--presence-head"
    return [flag], flag, f"drop {flag};"


@pytest.mark.parametrize("dest", ["base_filters", "arch", "switch"])
def test_a_flag_disagreeing_with_the_default_is_refused_before_training(
        folder_dir, tmp_path, capsys, dest):
    flags, named, fix = other_value(dest, resolve_init(DEFAULT_INIT))
    out = tmp_path / "ft"
    rc = main(["--data", str(folder_dir), "--layout", "folder", "--init-weights", DEFAULT_INIT,
               "--out", str(out), *SPEED, *flags])
    assert rc == 2
    line = error_line(capsys)
    assert named in line and fix in line and "--init-weights model" in line
    assert "nerve_default_float.json" in line  # where the init model's value came from
    assert not out.exists()


def test_matching_flags_and_dropout_pass_through_merge():
    init = InitModel(path=packaged_init(), model={**DEFAULT_MODEL, "base_filters": 12},
                     input_hw=(128, 176), described_by="x.json")
    model, hw = merge_architecture(init, {"base_filters": 12, "separable": False},
                                   dropout=0.1)
    assert hw == (128, 176) and model["base_filters"] == 12 and model["dropout"] == 0.1


# ---------------------------------------------------------------- a run folder, a file


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, make_folder):
    root = tmp_path_factory.mktemp("init")
    data = make_folder(root / "folder")
    run = root / "tiny"
    assert main(["--data", str(data), "--out", str(run), *TINY_ARCH, *SPEED]) == 0
    return data, run


def test_a_run_folder_gives_its_architecture_without_flags(tiny_run, tmp_path):
    data, run = tiny_run
    out = tmp_path / "ft"
    assert main(["--data", str(data), "--out", str(out), "--init-weights", str(run),
                 "--freeze-encoder", *SPEED]) == 0
    mine, theirs = (json.loads((p / "config.json").read_text()) for p in (out, run))
    assert mine["model"] == theirs["model"] and mine["input_hw"] == [32, 48]
    assert mine["init_weights"] == str(run)


def test_a_run_flag_disagreeing_names_the_run_config(tiny_run, tmp_path, capsys):
    data, run = tiny_run
    rc = main(["--data", str(data), "--out", str(tmp_path / "x"), "--init-weights",
               str(run / "model.keras"), "--depth", "3"])
    assert rc == 2
    line = error_line(capsys)
    assert "--depth 3" in line and "depth 2" in line and str(run / "config.json") in line


def test_a_bare_file_falls_back_to_the_flags_and_weight_shapes(tiny_run, tmp_path, capsys):
    data, run = tiny_run
    bare = tmp_path / "bare.keras"
    shutil.copy(run / "model.keras", bare)
    rc = main(["--data", str(data), "--out", str(tmp_path / "x"), "--init-weights", str(bare),
               *SPEED, *TINY_ARCH, "--base-filters", "8"])
    assert rc == 2
    line = error_line(capsys)
    assert "no sidecar or run config" in line and "--base-filters" in line


def test_export_init_writes_a_file_whose_sidecar_drives_the_architecture(
        tiny_run, tmp_path, capsys):
    data, run = tiny_run
    out = tmp_path / "init" / "clinic_start.keras"
    assert main(["export-init", str(run), "--out", str(out), "--frame-list", "frames.txt"]) == 0
    meta = load_meta(out)
    assert meta.sha256 == sha256_file(out) and meta.input_hw == (32, 48)
    assert meta.extra["model"] == json.loads((run / "config.json").read_text())["model"]
    assert meta.extra["run"] == "tiny" and meta.extra["training_data"]["frame_list"] == \
        "frames.txt"
    assert str(tmp_path) not in json.dumps(meta.extra)  # no build-machine path
    capsys.readouterr()
    rc = main(["--data", str(data), "--out", str(tmp_path / "x"), "--init-weights", str(out),
               "--base-filters", "8"])
    assert rc == 2 and "clinic_start.json" in error_line(capsys)
    side = json.loads(sidecar_path(out).read_text())
    side["sha256"] = "0" * 64  # a sidecar of another file
    sidecar_path(out).write_text(json.dumps(side))
    rc = main(["--data", str(data), "--out", str(tmp_path / "y"), "--init-weights", str(out)])
    assert rc == 2 and "describes another file" in error_line(capsys)


def test_a_fine_tune_may_change_the_input_size(folder_dir, tmp_path):
    """No weight depends on the input size: a clinic may fine-tune at a larger one."""
    init = resolve_init(DEFAULT_INIT)
    h, w = init.input_hw
    big = f"{h + 32}x{w + 32}"
    out = tmp_path / "ft"
    assert main(["--data", str(folder_dir), "--layout", "folder", "--init-weights",
                 DEFAULT_INIT, "--out", str(out), *SPEED, "--input-size", big]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["input_hw"] == [h + 32, w + 32] and cfg["model"] == init.model
