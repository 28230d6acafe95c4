"""`edge-run --fetch-web-runtime` against a local HTTP server standing in for the npm registry:
the pinned tarballs land where /app/ serves them from; other bytes, unsafe tarballs and an
unreachable registry install nothing and say why in one line."""

from __future__ import annotations

import functools
import http.server
import io
import re
import tarfile
import threading
from pathlib import Path

import pytest

from edge.view.web import fetch
from edge.view.web.site import WASM_VARIANTS

REPO = Path(__file__).resolve().parents[2]


def npm_tarball(files: dict[str, bytes], extra: tarfile.TarInfo | None = None) -> bytes:
    """An npm-style .tgz: every file under package/."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if extra is not None:
            tar.addfile(extra)
    return buf.getvalue()


def fake_packages() -> dict[str, bytes]:
    core = {"package.json": b'{"name": "@litertjs/core"}', "dist/index.js": b"export {};"}
    core.update({f"wasm/{v}{s}": b"\0asm" for v in WASM_VARIANTS for s in (".js", ".wasm")})
    utils = {"package.json": b'{"name": "@litertjs/wasm-utils"}', "dist/index.js": b"export {};"}
    return {"core": npm_tarball(core), "wasm-utils": npm_tarball(utils)}


@pytest.fixture
def registry(tmp_path):
    """A static folder served over HTTP with the npm tarball URL layout; yields (url, root)."""
    root = tmp_path / "registry"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def publish(root: Path, tarballs: dict[str, bytes]) -> dict[str, str]:
    """Put the tarballs where the registry serves them; returns their sha512 pins."""
    for package, data in tarballs.items():
        path = root / "@litertjs" / package / "-" / f"{package}-{fetch.LITERTJS_VERSION}.tgz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return {p: fetch.sha512_b64(d) for p, d in tarballs.items()}


def test_fetch_installs_the_pinned_packages_where_app_serves_them(registry, tmp_path):
    url, root = registry
    pins = publish(root, fake_packages())
    lines: list[str] = []
    target = fetch.fetch_web_runtime(tmp_path / "vendor", url, pins, say=lines.append)
    assert target == tmp_path / "vendor" / "node_modules" / "@litertjs"
    assert (target / "core" / "dist" / "index.js").read_bytes() == b"export {};"
    assert (target / "wasm-utils" / "package.json").is_file()
    assert (tmp_path / "vendor" / f".installed-{fetch.LITERTJS_VERSION}").is_file()
    assert sum("downloading" in line for line in lines) == 2  # one line per package
    assert not list(target.parent.glob(".fetch-*"))  # no staging left behind
    # Fetching again replaces the folder as a whole.
    fetch.fetch_web_runtime(tmp_path / "vendor", url, pins, say=lines.append)
    assert (target / "core" / "package.json").is_file()


def test_other_bytes_than_pinned_install_nothing(registry, tmp_path):
    url, root = registry
    pins = publish(root, fake_packages())
    pins["wasm-utils"] = fetch.sha512_b64(b"something else")
    with pytest.raises(fetch.FetchError, match=r"sha512 does not match.*nothing was installed"):
        fetch.fetch_web_runtime(tmp_path / "vendor", url, pins, say=lambda s: None)
    assert not (tmp_path / "vendor" / "node_modules" / "@litertjs").exists()
    assert not list((tmp_path / "vendor" / "node_modules").glob(".fetch-*"))


def test_a_tarball_with_a_path_out_of_the_package_is_refused(registry, tmp_path):
    url, root = registry
    evil = tarfile.TarInfo("package/../../escape.js")
    pins = publish(root, {"core": npm_tarball({"package.json": b"{}"}, extra=evil)})
    with pytest.raises(fetch.FetchError, match="unexpected entry"):
        fetch.fetch_web_runtime(tmp_path / "vendor", url, pins, say=lambda s: None)
    assert not (tmp_path / "escape.js").exists() and not (tmp_path.parent / "escape.js").exists()


def test_an_unreachable_registry_names_the_url_and_the_mirror_setting(tmp_path):
    with pytest.raises(fetch.FetchError) as err:
        fetch.fetch_web_runtime(tmp_path / "vendor", "http://127.0.0.1:9", None,
                                say=lambda s: None)
    text = str(err.value)
    assert "http://127.0.0.1:9/@litertjs/core/-/core-" in text and fetch.REGISTRY_ENV in text
    assert "\n" not in text


def test_the_pinned_version_is_the_makefiles():
    made = re.search(r"^LITERTJS_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert made and made.group(1) == fetch.LITERTJS_VERSION
    assert fetch.tarball_url(fetch.DEFAULT_REGISTRY, "core") == (
        f"https://registry.npmjs.org/@litertjs/core/-/core-{fetch.LITERTJS_VERSION}.tgz")
