"""`make check-arm64` as part of the suite: the device package installed on an emulated
Raspberry Pi OS (arm64) as docs/deploy-pi.md says, against x86, on phantom frames and on real
frames from the suite's one data setting (tests/conftest.py).

Slow (a few minutes with the cached root, about 3-11 minutes more to build it once). The
check's progress lines go straight to the terminal while it runs (pytest's capture is
suspended for it), so `make test` is never silent while the root builds or pip runs under
emulation. Skips with the check's own one-line reason where this machine cannot run arm64
binaries (not root, no qemu, no binfmt_misc), and when the real data is missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_data

REPO = Path(__file__).resolve().parents[2]
REPORT = Path.home() / ".cache" / "nerve-edge" / "arm64-last.json"  # not into the tree
EDGE_PYTHON = REPO / ".venv-edge" / "bin" / "python"  # the device install, as on a board
TIMEOUT_S = 40 * 60  # a cold root build included


def run_visibly(cmd: list[str], capsys) -> tuple[int, list[str]]:
    """Run ``cmd``, echoing each output line to the terminal as it comes (capture suspended);
    returns its exit code and its lines."""
    lines: list[str] = []
    with capsys.disabled():
        print(f"\n{' '.join(Path(c).name if i < 2 else c for i, c in enumerate(cmd))}",
              flush=True)
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        try:
            for line in proc.stdout:
                print(line, end="", flush=True)
                lines.append(line.rstrip("\n"))
            code = proc.wait(timeout=TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.terminate()  # the check unmounts on SIGTERM
                proc.wait(timeout=60)
    return code, lines


@pytest.mark.slow
def test_device_package_on_arm64_gives_the_same_masks_as_x86(capsys):
    data = require_data()
    require_data("kaggle-nerve", "train")
    x86 = EDGE_PYTHON if EDGE_PYTHON.is_file() else Path(sys.executable)
    REPORT.unlink(missing_ok=True)
    code, lines = run_visibly(
        [str(x86), str(REPO / "scripts" / "check_arm64.py"), "--data", str(data),
         "--report", str(REPORT), "--x86-python", str(x86)], capsys)
    skipped = [ln for ln in lines if ln.startswith("check-arm64: skipped:")]
    if skipped and code == 0:
        pytest.skip(skipped[0])
    assert code == 0, "\n".join(lines[-40:])
    report = json.loads(REPORT.read_text())
    assert set(report["agreement"]) == {"phantom-frames", "real"}  # both frame sets compared
    for frame_set, models in report["agreement"].items():
        assert set(models) == set(report["models"])
        for model, row in models.items():
            assert row["passed"], (frame_set, model, row["line"])
            assert row["identical_inputs"] == row["frames"] > 0
            if row["quantized"]:
                assert row["bit_identical"] == row["frames"], (frame_set, model)
    assert report["arm64"]["venv_imports"]["from_system"]
    assert report["arm64"]["venv_imports"]["numpy"].startswith("1.24")
