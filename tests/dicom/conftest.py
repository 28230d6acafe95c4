"""Shared fixtures for tests/dicom (run in the device venv: no TensorFlow).

Real files: the ultrasound examples pydicom ships inside its package (never downloaded).
Made files: ``make_us`` writes small ultrasound DICOMs with chosen pixels and headers.
A real PACS: ``orthanc`` starts Debian's Orthanc (+ DICOMweb plugin) on loopback with a
temporary config; the tests that need it skip with one line where it is not installed
(`make orthanc` installs it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from dicomfiles import US_EXAMPLES, make_us, shipped

HERE = Path(__file__).resolve().parent
EXTRA = ("pydicom", "highdicom", "pynetdicom")
MISSING = [name for name in EXTRA if importlib.util.find_spec(name) is None]

ORTHANC = "Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
ORTHANC_AET = "ORTHANC"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def pytest_collection_modifyitems(config, items) -> None:
    """Without the [dicom] extra every test here skips with one line saying how to get it."""
    if not MISSING:
        return
    skip = pytest.mark.skip(reason=f"the [dicom] extra is not installed ({', '.join(MISSING)}"
                                   f" missing): pip install -e '.[dicom]'")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def us_examples() -> dict[str, Path]:
    """name -> path of every ultrasound example pydicom ships (downloaded ones excluded)."""
    return {name: shipped(name) for name in US_EXAMPLES}


@pytest.fixture
def us_file(tmp_path):
    """make_us bound to this test's folder: us_file("a.dcm", frames=..., ...) -> Path."""
    return lambda name, **kw: make_us(tmp_path / name, **kw)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OrthancServer:
    """One Orthanc on loopback, its storage in a temporary folder (kept across restarts)."""

    def __init__(self, folder: Path, check_called_aet: bool = False) -> None:
        self.folder = folder
        self.http_port, self.dicom_port = _free_port(), _free_port()
        self.config = folder / "orthanc.json"
        self.config.write_text(json.dumps({
            "Name": "nerve-edge-test", "StorageDirectory": str(folder / "db"),
            "IndexDirectory": str(folder / "db"), "HttpPort": self.http_port,
            "DicomPort": self.dicom_port, "DicomAet": ORTHANC_AET,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "DicomCheckCalledAet": check_called_aet, "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }))
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.rest}/dicom-web"

    @property
    def dimse(self) -> str:
        return f"127.0.0.1:{self.dicom_port}:{ORTHANC_AET}"

    def start(self) -> None:
        self._log = open(self.folder / "orthanc.log", "ab")  # noqa: SIM115  closed in kill()
        self.proc = subprocess.Popen([ORTHANC, str(self.config)], stdout=self._log,
                                     stderr=self._log, cwd=self.folder)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited: see {self.folder / 'orthanc.log'}")
            try:
                self.get("/system")
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("Orthanc did not answer in time")

    def kill(self) -> None:
        """SIGKILL: the PACS vanishes as if its machine lost power."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT_S)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def get(self, route: str):
        with urllib.request.urlopen(self.rest + route, timeout=5) as reply:
            body = reply.read()
        return json.loads(body) if reply.headers.get_content_type() == "application/json" else body

    def post(self, route: str, data: bytes):
        request = urllib.request.Request(self.rest + route, data=data, method="POST")
        with urllib.request.urlopen(request, timeout=5) as reply:
            return json.loads(reply.read())

    def instance_file(self, sop_instance_uid: str) -> bytes | None:
        """The stored file of the instance with this SOP Instance UID, or None."""
        found = [m for m in self.post("/tools/lookup", sop_instance_uid.encode())
                 if m["Type"] == "Instance"]
        return self.get(f"/instances/{found[0]['ID']}/file") if found else None

    def count(self) -> int:
        return len(self.get("/instances"))


def _need_orthanc() -> None:
    if shutil.which(ORTHANC) is None:
        pytest.skip("Orthanc is not installed (`make orthanc` installs Debian's orthanc)")
    if not DICOMWEB_PLUGIN.is_file():
        pytest.skip(f"the Orthanc DICOMweb plugin is missing ({DICOMWEB_PLUGIN}); "
                    "`make orthanc` installs orthanc-dicomweb")


@pytest.fixture
def orthanc(tmp_path_factory):
    """A fresh Orthanc for one test (started, killed at the end)."""
    _need_orthanc()
    server = OrthancServer(tmp_path_factory.mktemp("orthanc"))
    server.start()
    yield server
    server.kill()


@pytest.fixture
def strict_orthanc(tmp_path_factory):
    """An Orthanc that checks the called AE title (to see a refusal)."""
    _need_orthanc()
    server = OrthancServer(tmp_path_factory.mktemp("orthanc-strict"), check_called_aet=True)
    server.start()
    yield server
    server.kill()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # urllib would send loopback requests through a configured proxy; the tests talk to Orthanc.
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
