"""edge-convert's CLI contract (edge.clikit) in real subprocesses: SIGTERM leaves no partial
files, a missing TensorFlow and a bad path are one line and exit 2, staging folders of killed
runs are removed by the next run, and the sidecar records no absolute path."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from convert.cli import STEPS, chain_parser, main, step_parser
from tests.cli_contract import (
    EXIT_INTERRUPTED,
    assert_one_error,
    assert_options_documented,
    run_tool,
    terminate_when,
)

INSTALL = "pip install -e '.[train]'"


def test_every_option_has_help_and_default():
    assert_options_documented(chain_parser())
    for step in STEPS:
        assert_options_documented(step_parser(step))


def test_sigterm_leaves_no_partial_files(tiny_run, tmp_path):
    out = tmp_path / "out"

    def staging():
        return any(p.name.startswith(".out.tmp-") for p in tmp_path.iterdir())

    args = [str(tiny_run), "--out", str(out), "--prune", "0.5", "--prune-epochs", "100000",
            "--latency-runs", "1"]
    rc, log = terminate_when("convert.cli", args, staging, tmp_path.parent / "convert.log")
    assert rc == EXIT_INTERRUPTED, log[-3000:]
    assert "terminated (SIGTERM); nothing written" in log and "Traceback" not in log
    assert list(tmp_path.iterdir()) == []  # no out, no .out.tmp-*, no half file


def test_missing_tensorflow_is_one_line(tiny_run, tmp_path):
    proc = run_tool("convert.cli", [str(tiny_run), "--out", str(tmp_path / "o")],
                    hide=["tensorflow"])
    assert_one_error(proc, "edge-convert", "tensorflow", INSTALL)


def test_bad_path_is_one_line(tmp_path):
    proc = run_tool("convert.cli", [str(tmp_path / "no_such_run"), "--out", str(tmp_path / "o")])
    assert_one_error(proc, "edge-convert", "no_such_run")


def test_next_run_removes_staging_folders_of_killed_runs(tiny_run, tmp_path, capsys):
    dead = tmp_path / ".out.tmp-999999999-abcd"  # no such process
    old_style = tmp_path / ".out.tmp-xyz"  # an earlier version's name, without a pid
    mine = tmp_path / f".out.tmp-{os.getpid()}-ijkl"  # this run has made none yet: stale
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    live = tmp_path / f".out.tmp-{running.pid}-efgh"  # a conversion running right now
    try:
        for d in (dead, old_style, mine, live):
            d.mkdir()
            (d / "half.tflite").write_bytes(b"x")
        rc = main([str(tiny_run), "--out", str(tmp_path / "out"), "--data",
                   str(tmp_path / "missing")])
    finally:
        running.kill()
        running.wait()
    assert rc == 2 and "missing" in capsys.readouterr().err  # fails after the clean-up
    assert not dead.exists() and not old_style.exists() and not mine.exists()
    assert live.exists()


def test_sidecar_records_no_absolute_path(tiny_run, tmp_path):
    """The sidecar travels with the model: provenance by run name and sha256, no paths of
    the build machine."""
    from convert.chain import source_provenance
    from convert.data import open_source
    from edge.model.metadata import sha256_file

    _, src = open_source(tiny_run, None)
    prov = source_provenance(src)
    assert prov == {"run": tiny_run.name, "file": "model.keras",
                    "sha256": sha256_file(tiny_run / "model.keras")}
    assert src.data_dir.is_absolute() and not os.path.isabs(src.summary()["data_dir"])
    assert src.summary()["data_dir"] == "/".join(src.data_dir.parts[-2:])
    assert str(src.data_dir) not in json.dumps(src.summary())
