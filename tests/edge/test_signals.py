"""edge.signals in small pieces (fast): a signal during an import is raised after it, a program
leaves at once before its body, its stop line is a line of its own, and its exit skips the
interpreter's finalization. The sweep over real tools: test_signals_any_moment.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edge import signals

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def handlers():
    """Install edge.signals in this (pytest) process, and put pytest's handlers back after."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signals.install("test")
    yield
    for s, h in saved.items():
        signal.signal(s, h)


def test_a_signal_during_an_import_is_raised_once_the_import_is_over(handlers, tmp_path,
                                                                     monkeypatch):
    (tmp_path / "slow_module.py").write_text(textwrap.dedent("""
        import os, signal, time
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:  # Python code running: the signal could land here
            pass
        COMPLETE = True
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(signals.Terminated):
        import slow_module  # noqa: F401
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # raised here, after the import (the courier)
            pass
        pytest.fail("the signal held back during the import was never raised")
    assert sys.modules["slow_module"].COMPLETE
    del sys.modules["slow_module"]


def run_program(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=60)


def test_a_program_signalled_before_its_body_leaves_at_once_with_one_line():
    proc = run_program("""
        from edge import signals
        signals.install("tool", program=True)
        import os, signal, time
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
        """)
    assert (proc.returncode, proc.stderr) == (130, "tool: terminated (SIGTERM)\n")


def test_the_stop_line_starts_a_line_of_its_own():
    proc = run_program("""
        import sys
        from edge import signals
        signals.install("tool", program=True)
        signals.body_started()
        sys.stderr.write("half a line")
        signals.say_stopped("tool", KeyboardInterrupt(), "nothing written")
        """)
    assert proc.stderr == "half a line\ntool: interrupted (Ctrl-C); nothing written\n"


def test_a_program_leaves_with_its_code_after_atexit_without_finalizing():
    proc = run_program("""
        import atexit, sys
        from edge import signals
        signals.install("tool", program=True)
        signals.body_started()
        atexit.register(lambda: print("atexit ran", flush=True))
        class Late:
            def __del__(self):
                print("finalized")  # module teardown: never reached after os._exit
        keep = Late()
        print("done")
        sys.exit(signals.finish(3))
        """)
    assert (proc.returncode, proc.stdout) == (3, "done\natexit ran\n")


def test_a_signal_while_leaving_ends_with_130_and_its_line():
    proc = run_program("""
        import atexit, os, signal, time
        from edge import signals
        signals.install("tool", program=True)
        signals.body_started()
        atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(30)))
        signals.finish(0)
        """)
    assert (proc.returncode, proc.stderr) == (130, "tool: interrupted (Ctrl-C)\n")


def test_a_raised_signal_that_code_swallowed_is_raised_again():
    proc = run_program("""
        import os, signal, sys, time
        from edge import signals
        signals.install("tool", program=True)
        signals.RAISE_IN += ("<string>",)  # this code counts as the kit's (raised in, not held)
        signals.body_started()
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except KeyboardInterrupt:
            pass  # swallowed, as some C code does: no stop_reason()
        try:
            time.sleep(10)
            sys.exit(signals.finish(0))
        except KeyboardInterrupt as e:
            signals.say_stopped("tool", e)
            sys.exit(signals.finish(130))
        """)
    assert (proc.returncode, proc.stderr) == (130, "tool: terminated (SIGTERM)\n")


def test_a_program_holds_a_signal_back_in_another_librarys_code():
    proc = run_program("""
        import os, signal, sys, time
        from edge import signals
        signals.install("tool", program=True)
        signals.body_started()
        try:
            os.kill(os.getpid(), signal.SIGINT)  # held: this code is not the kit's
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                pass
            print("held", flush=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                signals.launched_as("x", "y")  # the kit's code: raised in there
        except KeyboardInterrupt as e:
            signals.say_stopped("tool", e)
            sys.exit(signals.finish(130))
        """)
    assert (proc.returncode, proc.stdout, proc.stderr) == (130, "held\n",
                                                          "tool: interrupted (Ctrl-C)\n")


def test_a_signal_in_a_weakref_callback_is_held_back(handlers):
    import weakref

    class Thing:
        pass

    got = []
    thing = Thing()
    weakref.finalize(thing, lambda: (os.kill(os.getpid(), signal.SIGINT), got.append(1)))
    with pytest.raises(KeyboardInterrupt):
        del thing  # the callback runs here; the signal must not be raised inside it
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pass
    assert got == [1]


def test_a_signal_inside_held_is_raised_when_the_block_is_done(handlers):
    done = []
    with pytest.raises(signals.Terminated):
        with signals.held():
            os.kill(os.getpid(), signal.SIGTERM)
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:  # Python code running: it could land here
                pass
            done.append("all of the block")
        pytest.fail("the signal held back inside held() was not raised at its end")
    assert done == ["all of the block"]


@pytest.mark.parametrize("first", [signal.SIGINT, signal.SIGTERM],
                         ids=["after-SIGINT", "after-SIGTERM"])
def test_a_signal_between_the_two_handlers_waits_for_both(first):
    """The entry module's first lines install SIGINT's and SIGTERM's handlers; a signal sent
    right after the first of the two is in place (what a sender watching /proc sees) must still
    reach edge.signals: 130 and one line, never Python's default KeyboardInterrupt traceback
    (the sweep's edge-bench first-lines send once met that) or the kernel's silent SIGTERM."""
    other = signal.SIGTERM if first == signal.SIGINT else signal.SIGINT
    code = textwrap.dedent(f"""
        import os, signal
        real = signal.signal
        def installing(signum, handler):
            old = real(signum, handler)
            if signum == {int(first)}:  # the other one lands before its own handler is set
                os.kill(os.getpid(), {int(other)})
            return old
        signal.signal = installing
        from edge import signals
        signals.install("tool", program=True)
        signal.signal = real
        import time
        time.sleep(5)
        print("not stopped")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert out.returncode == 130, out.stderr
    stop = "interrupted (Ctrl-C)" if other == signal.SIGINT else "terminated (SIGTERM)"
    assert out.stderr.strip().splitlines() == [f"tool: {stop}"] and not out.stdout
