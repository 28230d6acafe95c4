"""Helpers for the CLI-contract tests of edge-train, edge-convert and edge-bench (each tool's
test folder has its own test_*_cli_contract.py): real subprocesses, optional packages hidden,
SIGTERM sent mid-run, and the one-line error check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WAIT_S = 600  # a start-up that imports TensorFlow on a loaded 2-core machine is slow
POLL_S = 0.2
EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


def _code(module: str, args: Sequence[str], hide: Sequence[str]) -> str:
    """Python source: hide packages (import -> ModuleNotFoundError), then run the CLI module
    as `python -m module args`."""
    return (f"import sys, runpy; sys.modules.update(dict.fromkeys({list(hide)!r}));"
            f" sys.argv = [{module!r}, *{list(args)!r}];"
            f" runpy.run_module({module!r}, run_name='__main__')")


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


def run_tool(module: str, args: Sequence[str], hide: Sequence[str] = (),
             python: str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-c", _code(module, args, hide)], capture_output=True,
                          text=True, env=_env(), cwd=REPO, timeout=WAIT_S)


def terminate_when(module: str, args: Sequence[str], ready: Callable[[], bool],
                   log: Path) -> tuple[int, str]:
    """Start the CLI, wait until ready() (e.g. a checkpoint exists), send SIGTERM; returns
    (exit code, stderr). stdout+stderr go to ``log`` (a pipe could fill up and block)."""
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", _code(module, args, ())], stdout=out,
                                stderr=subprocess.STDOUT, env=_env(), cwd=REPO)
        try:
            deadline = time.monotonic() + WAIT_S
            while not ready():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"never got ready (exit {proc.returncode}):\n"
                                         + log.read_text()[-3000:])
                time.sleep(POLL_S)
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=WAIT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return rc, log.read_text()


def error_lines(stderr: str, prog: str) -> list[str]:
    """The `PROG: error: ...` lines; asserts there is no traceback."""
    assert "Traceback" not in stderr, stderr[-3000:]
    return [ln for ln in stderr.splitlines() if ln.startswith(f"{prog}: error:")]


def assert_one_error(proc: subprocess.CompletedProcess, prog: str, *words: str) -> str:
    """Exit 2 and exactly one error line that contains every word; returns the line."""
    lines = error_lines(proc.stderr, prog)
    assert proc.returncode == EXIT_USAGE, (proc.returncode, proc.stderr[-3000:])
    assert len(lines) == 1, proc.stderr[-3000:]
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def assert_options_documented(parser) -> None:
    """Every option has a help text that says its default."""
    formatter = parser._get_formatter()  # noqa: SLF001  (argparse has no public way)
    for action in parser._actions:  # noqa: SLF001
        name = f"{parser.prog} {action.option_strings or action.dest}"
        assert action.help, f"{name}: no help"
        if action.option_strings and action.dest != "help" and not action.required:
            text = formatter._get_help_string(action)  # noqa: SLF001
            assert "default" in text or "(None:" in text, f"{name}: no default in {text!r}"


def partial_files(folder: Path) -> list[Path]:
    """Temp files/folders a write in progress leaves (names from edge.fsutil and the
    staging folders of edge-convert)."""
    return [p for p in folder.rglob(".*") if ".tmp" in p.name or ".curves." in p.name]
