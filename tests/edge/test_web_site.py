"""The /app/ site without a browser: what edge-run --serve answers, the static export, and
the shipped web model's contract (what LiteRT.js can load, the int8 model's settings)."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys

import numpy as np
import pytest
from web_support import REPO, WEB_MODEL

from edge.errors import OutputError, UserInputError
from edge.view.serve import ServeSink
from edge.view.web import server
from edge.view.web.site import export_web, runtime_files, site_files

needs_runtime = pytest.mark.skipif(not runtime_files(), reason="the in-browser runtime is not "
                                   "installed: run `make web-runtime` (needs npm)")
ISOLATION = {"cross-origin-opener-policy": "same-origin",
             "cross-origin-embedder-policy": "require-corp",
             "cross-origin-resource-policy": "same-origin"}
TOKEN = "s3cret-token"


@pytest.fixture
def sink():
    s = ServeSink.from_spec("127.0.0.1:0", token=TOKEN, log=None)
    yield s
    s.close()


def get(sink, path: str, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp, body


@needs_runtime
@pytest.mark.parametrize("path", ["/app/", "/app/app.js", "/app/model/nerve.tflite",
                                  "/app/runtime/wasm/litert_wasm_threaded_internal.wasm"])
def test_app_files_are_public_and_isolated(sink, path):
    resp, body = get(sink, path)
    assert resp.status == 200, body[:200]
    headers = {k.lower(): v for k, v in resp.getheaders()}
    for name, value in ISOLATION.items():
        assert headers[name] == value
    assert int(headers["content-length"]) == len(body) > 0


@needs_runtime
def test_page_types_csp_and_revalidation(sink):
    resp, body = get(sink, "/app/")
    assert resp.getheader("Content-Type").startswith("text/html")
    csp = resp.getheader("Content-Security-Policy")
    assert server.import_map_hash(body.decode()) in csp and "'wasm-unsafe-eval'" in csp
    resp, _ = get(sink, "/app/runtime/wasm/litert_wasm_internal.wasm")
    assert resp.getheader("Content-Type") == "application/wasm"
    again, body = get(sink, "/app/app.js", {"If-None-Match": get(sink, "/app/app.js")[0]
                                            .getheader("ETag")})
    assert again.status == 304 and body == b""


@needs_runtime
def test_other_paths_keep_their_token_and_unknown_app_paths_are_404(sink):
    assert get(sink, "/status.json")[0].status == 401  # the clinic view still needs the token
    assert get(sink, f"/status.json?token={TOKEN}")[0].status == 200
    for path in ("/app/../serve.py", "/app/model/../../serve.py", "/app/nope.js",
                 "/app/runtime/wasm/litert_wasm_jspi_internal.wasm"):
        assert get(sink, path)[0].status == 404, path
    resp, _ = get(sink, "/app")
    assert resp.status == 301 and resp.getheader("Location") == "/app/"


def test_site_refuses_a_model_without_sidecar(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(WEB_MODEL.read_bytes())
    with pytest.raises(UserInputError, match="sidecar"):
        site_files(model)


def test_site_refuses_a_model_that_is_not_the_web_variant():
    with pytest.raises(UserInputError, match="web variant only"):
        site_files(REPO / "edge/models/nerve_default_int8.tflite")


@needs_runtime
def test_export_web_cli_fails_in_one_line_on_a_used_folder(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    done = subprocess.run([sys.executable, "-m", "edge.cli", "--export-web",
                           str(tmp_path / "taken")], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "not an empty folder" in done.stderr


@needs_runtime
def test_export_copies_the_whole_site(tmp_path):
    out = export_web(tmp_path / "site")
    copied = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert copied == set(site_files())
    assert {"index.html", "sw.js", "manifest.webmanifest", "model/nerve.tflite",
            "model/nerve.json", "runtime/litert.js"} <= copied
    assert (out / "model" / "nerve.tflite").read_bytes() == WEB_MODEL.read_bytes()
    with pytest.raises(OutputError, match="not an empty folder"):
        export_web(out)


def test_manifest_makes_the_page_installable():
    manifest = json.loads((REPO / "edge/view/web/app/manifest.webmanifest").read_text())
    assert manifest["display"] == "standalone" and manifest["start_url"] == "./"
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        assert (REPO / "edge/view/web/app" / icon["src"]).is_file()


def test_web_model_is_what_litertjs_runs():
    """float32 input and output (no int8 I/O tensors), every dimension fixed, int8 inside."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(WEB_MODEL))
    for detail in (*interp.get_input_details(), *interp.get_output_details()):
        assert detail["dtype"] == np.float32
        assert list(detail["shape_signature"]) == [1, 128, 176, 1]
    kinds = {d["dtype"] for d in interp.get_tensor_details()}
    assert np.int8 in kinds
    assert WEB_MODEL.stat().st_size < 1_000_000


def test_web_sidecar_settings_equal_the_shipped_int8_model():
    web = json.loads(WEB_MODEL.with_suffix(".json").read_text())
    int8 = json.loads((REPO / "edge/models/nerve_default_int8.json").read_text())
    for key in ("input_hw", "scale", "offset", "threshold", "min_area", "presence_threshold"):
        assert web[key] == int8[key], key
    assert web["extra"]["format"] == "web"
    assert web["extra"]["validation"]["dice_drop"] <= 0.01


def test_app_without_runtime_says_how_to_install_it(sink, monkeypatch):
    monkeypatch.setattr(server, "runtime_files", dict)  # as before `make web-runtime`
    resp, body = get(sink, "/app/")
    assert resp.status == 503 and b"make web-runtime" in body
