"""The board's install is a plain `pip install` of a wheel (docs/deploy-pi.md), not this
checkout: the wheel carries the in-browser runtime when `make web-runtime` ran before it was
built, and without it `/app/` and `--export-web` name `edge-run --fetch-web-runtime`, which
then installs it into the installed package (from a local stand-in for the npm registry
serving the real pinned tarballs; skipped when the real registry cannot be reached)."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from edge.view.web import fetch
from edge.view.web.site import VENDOR_DIR, runtime_files

REPO = Path(__file__).resolve().parents[2]
VENDOR_IN_WHEEL = "edge/view/web/vendor/node_modules/@litertjs/"
# Asks the installed package's /app/ for its page and one wasm file: prints the statuses,
# the first line of the page's body and where edge was imported from.
SERVE_PROBE = """
import http.client, json, edge
from edge.view.serve import ServeSink
sink = ServeSink.from_spec("127.0.0.1:0", token="t0ken-t0ken-t0ken", log=None)
got = {"edge": edge.__file__}
for path in ("/app/", "/app/runtime/wasm/litert_wasm_internal.wasm"):
    conn = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    got[path] = [resp.status, resp.read()[:300].decode(errors="replace")]
sink.close()
print(json.dumps(got))
"""


def tree_copy(dest: Path, with_runtime: bool) -> Path:
    """This checkout as a fresh clone has it (tracked + untracked, not ignored), plus the
    fetched runtime when asked (what `make web-runtime` leaves)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        if (REPO / rel).is_file() and not rel.startswith("edge/view/web/vendor"):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    if with_runtime:
        shutil.copytree(VENDOR_DIR.parents[1], dest / "edge/view/web/vendor", symlinks=False)
    return dest


def build_and_install(tmp: Path, with_runtime: bool) -> tuple[Path, Path]:
    """(the wheel, a folder the wheel is installed into with pip, non-editable)."""
    src = tree_copy(tmp / "src", with_runtime)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(src), "-w",
                    str(tmp / "dist")], check=True, capture_output=True, timeout=600)
    wheel = next((tmp / "dist").glob("nerve_edge-*.whl"))
    site = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(site), str(wheel)], check=True, capture_output=True, timeout=600)
    return wheel, site


def installed_env(site: Path, **extra: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(site), "OPENCV_LOG_LEVEL": "ERROR", **extra}


def serve_probe(site: Path) -> dict:
    got = subprocess.run([sys.executable, "-c", SERVE_PROBE], env=installed_env(site),
                         cwd=site, capture_output=True, text=True, timeout=120)
    assert got.returncode == 0, got.stderr[-2000:]
    result = json.loads(got.stdout.strip().splitlines()[-1])
    assert Path(result["edge"]).is_relative_to(site)  # the installed wheel, not this checkout
    return result


@pytest.mark.slow
@pytest.mark.skipif(not runtime_files(), reason="the in-browser runtime is not here: run "
                    "`make web-runtime` (needs npm)")
def test_a_wheel_built_after_make_web_runtime_carries_it(tmp_path):
    wheel, site = build_and_install(tmp_path, with_runtime=True)
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in runtime_files().values():
        rel = path.relative_to(VENDOR_DIR).as_posix()
        assert VENDOR_IN_WHEEL + rel in names, rel
    got = serve_probe(site)
    assert got["/app/"][0] == 200 and "<html" in got["/app/"][1].lower()
    assert got["/app/runtime/wasm/litert_wasm_internal.wasm"][0] == 200


@pytest.fixture
def real_tarballs_served_locally(tmp_path):
    """The real pinned tarballs (from the npm registry, once) served by a local HTTP server."""
    root = tmp_path / "registry"
    for package in fetch.PINNED_SHA512:
        url = fetch.tarball_url(fetch.DEFAULT_REGISTRY, package)
        try:
            data = fetch.download(url, say=lambda s: None)
        except fetch.FetchError as err:
            pytest.skip(f"the npm registry is not reachable: {err}")
        path = root / "@litertjs" / package / "-" / Path(url).name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_an_install_without_the_runtime_names_the_flag_that_fetches_it(
        tmp_path, real_tarballs_served_locally):
    wheel, site = build_and_install(tmp_path, with_runtime=False)
    assert not any(n.startswith("edge/view/web/vendor/") for n in zipfile.ZipFile(wheel).namelist())
    got = serve_probe(site)
    status, body = got["/app/"]
    assert status == 503 and "edge-run --fetch-web-runtime" in body
    assert "make web-runtime" not in body  # no Makefile on a board
    export = subprocess.run([sys.executable, "-m", "edge.cli", "--export-web",
                             str(tmp_path / "site-out")], env=installed_env(site), cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert export.returncode == 2 and "--fetch-web-runtime" in export.stderr
    fetched = subprocess.run(
        [sys.executable, "-m", "edge.cli", "--fetch-web-runtime"], cwd=tmp_path,
        env=installed_env(site, **{fetch.REGISTRY_ENV: real_tarballs_served_locally}),
        capture_output=True, text=True, timeout=300)
    assert fetched.returncode == 0, fetched.stderr
    assert "downloading" in fetched.stdout and "installed in" in fetched.stdout
    got = serve_probe(site)
    assert got["/app/"][0] == 200
    assert got["/app/runtime/wasm/litert_wasm_internal.wasm"][0] == 200
