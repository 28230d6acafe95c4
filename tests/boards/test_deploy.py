"""deploy/: the systemd unit verifies, runs edge-run with the env file's flags, and treats
edge-run's SIGTERM stop (exit 130) as clean; its --model is the state folder's models/current
that edge-deploy installs into, a folder the hardened unit lets the service user write."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edge import clikit

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "nerve-edge.service"
ENV_FILE = REPO / "deploy" / "nerve-edge.env"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed "
                                   "(apt-get install -y systemd)")


def service_section() -> dict[str, list[str]]:
    """[Service] keys -> every value (systemd allows repeated keys)."""
    values: dict[str, list[str]] = {}
    section = None
    for line in UNIT.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def verify(unit: Path) -> str:
    got = subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True,
                         timeout=120)
    return (got.stdout + got.stderr).strip() if got.returncode == 0 else f"exit {got.returncode}"


@needs_analyze
def test_unit_verifies_cleanly(tmp_path):
    unit = tmp_path / UNIT.name
    shutil.copy(UNIT, unit)
    assert verify(unit) == ""


@needs_analyze
def test_verify_would_catch_a_broken_unit(tmp_path):
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    assert "sometimes" in verify(unit)


def test_unit_runs_unprivileged_with_video_and_restarts_on_failure():
    s = service_section()
    assert s["User"] != ["root"] and s["SupplementaryGroups"] == ["video"]
    assert s["Restart"] == ["on-failure"] and s["StateDirectory"] == ["nerve-edge"]
    assert str(clikit.EXIT_INTERRUPTED) in s["SuccessExitStatus"][0].split()
    assert s["NoNewPrivileges"] == ["yes"] and s["ProtectSystem"] == ["strict"]


def exec_start_argv(env: dict[str, str], tmp_path: Path) -> list[str]:
    """Run ExecStart's shell line with a fake edge-run that prints its argv, one per line."""
    line = service_section()["ExecStart"][0]
    match = re.fullmatch(r"/bin/sh -c '(.*)'", line)
    assert match, line
    script = match.group(1).replace("$$", "$").replace("%%", "%")  # systemd's escapes
    fake = tmp_path / "edge-run"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    fake.chmod(0o755)
    full = {"PATH": "/usr/bin:/bin", "EDGE_RUN": str(fake), "STATE_DIRECTORY": "/var/lib/x",
            **env}
    got = subprocess.run(["/bin/sh", "-c", script], env=full, capture_output=True, text=True,
                         check=True)
    return got.stdout.splitlines()


def env_file_values() -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string("[env]\n" + ENV_FILE.read_text())
    return {k: v.strip('"') for k, v in parser["env"].items()}


def test_exec_start_passes_the_env_file_flags(tmp_path):
    env = env_file_values()
    argv = exec_start_argv(env, tmp_path)
    assert argv == [*env["EDGE_RUN_ARGS"].split(), "--headless", "--report",
                    "/var/lib/x/last-run.json"]
    assert "--serve" in argv and "--serve-token" not in argv and "--record" not in argv


def test_exec_start_adds_token_and_a_dated_recording(tmp_path):
    env = {**env_file_values(), "EDGE_RUN_TOKEN": "tok en-with-space-1234",
           "EDGE_RUN_RECORD": "yes"}
    argv = exec_start_argv(env, tmp_path)
    token_at = argv.index("--serve-token")
    assert argv[token_at + 1] == "tok en-with-space-1234"  # one argument, spaces and all
    record = argv[argv.index("--record") + 1]
    assert re.fullmatch(r"/var/lib/x/recording-\d{8}-\d{6}\.avi", record), record


def test_the_service_runs_the_installed_current_model(tmp_path):
    """--model names edge-deploy's `current` link in the unit's own state folder: the folder
    systemd makes and gives to the service user (StateDirectory=, writable under
    ProtectSystem=strict), where `sudo -u nerve-edge edge-deploy install` writes."""
    from edge.model.store import BOARD_STATE, CURRENT, MODELS_DIR

    s = service_section()
    argv = exec_start_argv(env_file_values(), tmp_path)
    model = Path(argv[argv.index("--model") + 1])
    assert model == BOARD_STATE / MODELS_DIR / CURRENT
    assert model.parent.parent == Path("/var/lib") / s["StateDirectory"][0]
    assert s["User"] == ["nerve-edge"] and s["StateDirectoryMode"] == ["0750"]
    for key in ("ReadOnlyPaths", "InaccessiblePaths", "ReadWritePaths", "TemporaryFileSystem"):
        assert not any("/var/lib" in v for v in s.get(key, [])), key
    assert s["ProtectSystem"] == ["strict"] and s["NoNewPrivileges"] == ["yes"]  # kept
