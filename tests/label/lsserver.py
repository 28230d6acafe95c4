"""A real Label Studio for the tests: its own venv (make labelstudio), started on loopback with
SQLite and a temporary data folder, no internet; the test user's legacy token is set at start.
Tests skip with the fix when the venv is missing."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LS_VENV = Path(os.environ.get("NERVE_EDGE_LABELSTUDIO_VENV", REPO / ".venv-labelstudio"))
LS_PYTHON = LS_VENV / "bin" / "python"
START_S = 600  # the first start migrates a fresh SQLite database: minutes on 2 loaded cores
USER, PASSWORD, TOKEN = "clinic@example.org", "not-a-secret-1", "nerveedgetesttoken0123456789"


@dataclass
class Server:
    url: str
    token: str
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def start(tmp: Path):
    """Yields a running Server; stops it afterwards."""
    if not (LS_VENV / "bin" / "label-studio").exists():
        pytest.skip(f"Label Studio's venv {LS_VENV} is missing: make labelstudio")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO", "DJANGO"))}
    env.update(LABEL_STUDIO_BASE_DATA_DIR=str(tmp), LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
               SENTRY_DSN="", FRONTEND_SENTRY_DSN="", COLLECT_ANALYTICS="false",
               LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true", LATEST_VERSION_CHECK="false",
               PYTHONPATH="")
    log = tmp / "labelstudio.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(LS_VENV / "bin" / "label-studio"), "start", "--no-browser", "--internal-host",
             "127.0.0.1", "--port", str(port), "--data-dir", str(tmp / "data"), "--username",
             USER, "--password", PASSWORD, "--user-token", TOKEN, "--enable-legacy-api-token"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while not _up(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"Label Studio did not start (exit {proc.poll()}):\n"
                                     + log.read_text()[-3000:])
            time.sleep(1.0)
        yield Server(url, TOKEN, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
