"""edge-convert's staging folder (.OUT.tmp-PID-XXXX next to --out): the current run removes
its own on every way out (published, an error, a signal, even one that lands while the folder
is being made or removed), and the next run removes those of killed runs: a gone pid, a pid
reused by a later process (containers hand out the same small pids again) or this very
process's pid, but never the folder of a conversion that is running right now."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from convert.common import (
    STAGE_MARK,
    _signals_deferred,
    publish_dir,
    remove_stale_staging,
    staging,
)
from edge import signals as edge_signals
from edge.signals import Terminated

HOUR_S = 3600


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if STAGE_MARK in p.name or ".old-" in p.name)


def _half_written(folder, name):
    d = folder / name
    d.mkdir()
    (d / "half.tflite").write_bytes(b"x" * 1024)
    return d


@pytest.fixture
def sleeper():
    """A live process other than this one (stands for a conversion running right now)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def handlers():
    """The CLIs' handlers (SIGTERM -> Terminated), restored after the test."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    edge_signals.install("nerve-edge")
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as in a terminal, even if pytest runs nohup
    yield
    for s, h in saved.items():
        signal.signal(s, h)


def test_published_run_leaves_only_out(tmp_path):
    out = tmp_path / "export"
    with staging(out) as stage:
        assert stage.name.startswith(f".export{STAGE_MARK}{os.getpid()}-")
        (stage / "model.tflite").write_bytes(b"m")
        publish_dir(stage, out)
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
    with staging(out) as stage:  # a second run replaces it whole
        (stage / "model.onnx").write_bytes(b"o")
        publish_dir(stage, out)
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
    assert [p.name for p in out.iterdir()] == ["model.onnx"]


def test_failed_run_removes_its_folder(tmp_path):
    with pytest.raises(RuntimeError), staging(tmp_path / "export") as stage:
        (stage / "half.tflite").write_bytes(b"x")
        raise RuntimeError("gate failed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_removes_its_folder(tmp_path, handlers, signum):
    with pytest.raises(KeyboardInterrupt), staging(tmp_path / "export") as stage:
        (stage / "half.tflite").write_bytes(b"x")
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the handler raises here
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL  # SIGHUP as it was before


def test_hangup_stays_ignored_under_nohup(tmp_path, handlers):
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with staging(tmp_path / "export"):
        os.kill(os.getpid(), signal.SIGHUP)  # ignored: the run goes on
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN


def test_signal_during_setup_or_cleanup_waits_for_it(handlers):
    """A signal that lands while the folder is made or removed acts once that is done."""
    done = []
    with pytest.raises(Terminated):
        with _signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # would have raised here without the deferral
            done.append(True)
    assert done == [True]
    assert signal.getsignal(signal.SIGTERM) is not None


def test_next_run_removes_folders_of_killed_runs(tmp_path, sleeper):
    out = tmp_path / "export"
    dead = _half_written(tmp_path, ".export.tmp-999999999-abcd1234")  # no such process
    old_style = _half_written(tmp_path, ".export.tmp-xyz")  # an earlier version's name
    replaced = _half_written(tmp_path, ".export.old-999999999-abcd1234")
    mine = _half_written(tmp_path, f".export.tmp-{os.getpid()}-abcd1234")  # this run made none
    reused = _half_written(tmp_path, f".export.tmp-{sleeper.pid}-reused00")
    old = time.time() - HOUR_S  # written an hour before the process with that pid started
    os.utime(reused, (old, old))
    live = _half_written(tmp_path, f".export.tmp-{sleeper.pid}-running0")  # its own, now
    other_out = _half_written(tmp_path, ".other.tmp-999999999-abcd1234")  # not beside --out
    removed = remove_stale_staging(out)
    assert sorted(p.name for p in removed) == sorted(
        p.name for p in (dead, old_style, replaced, mine, reused))
    assert _leftovers(tmp_path) == sorted([live.name, other_out.name])


def test_killed_conversion_is_cleaned_by_the_next(tmp_path):
    """A real process killed with SIGKILL (no handler runs) while its folder is half written:
    the next run's clean-up removes it, and that run leaves nothing of its own."""
    code = ("import sys, time; from convert.common import staging\n"
            "with staging(sys.argv[1]) as stage:\n"
            "    (stage / 'model.tflite').write_bytes(b'x' * 22_000)\n"
            "    print('staged', flush=True); time.sleep(60)\n")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "export")],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "staged"
    assert len(_leftovers(tmp_path)) == 1 and remove_stale_staging(tmp_path / "export") == []
    proc.kill()
    proc.wait()
    assert len(remove_stale_staging(tmp_path / "export")) == 1
    with staging(tmp_path / "export") as stage:
        publish_dir(stage, tmp_path / "export")
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
