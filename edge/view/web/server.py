"""Serving the /app/ site from edge-run --serve (hooked into edge/view/handler.py).

Public files, no token: the page, the runtime and the web model hold no patient data and
the page runs entirely in the viewer's browser. Only the fixed site map (edge/view/web/site.py)
is served; any other /app/ path is a 404.

Headers: COOP same-origin + COEP require-corp make the page cross-origin isolated, which
threaded WASM (SharedArrayBuffer) needs; CORP same-origin on every asset satisfies COEP.
``no-cache`` + an ETag let the browser and the service worker revalidate cheaply.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import ssl
from functools import lru_cache
from pathlib import Path

from edge.view.web.site import RUNTIME_MISSING, content_type, runtime_files, site_files

PREFIX = "/app/"
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# The page and its workers may talk to this server only. 'wasm-unsafe-eval' lets LiteRT.js
# compile its wasm; the import map (inline) is allowed by its hash, computed at start.
CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval' {import_map}; "
       "worker-src 'self' blob:; img-src 'self' blob: data:; media-src 'self' blob:; "
       "style-src 'self' 'unsafe-inline'; connect-src 'self'")
COPY_CHUNK_BYTES = 1 << 20
IMPORT_MAP_RE = re.compile(r'<script type="importmap">(.*?)</script>', re.DOTALL)


def serves(path: str) -> bool:
    """True for every path this module answers (the /app/ tree and bare /app)."""
    return path == PREFIX.rstrip("/") or path.startswith(PREFIX)


@lru_cache(maxsize=1)
def _site() -> dict[str, Path]:
    return site_files()


def import_map_hash(page: str) -> str:
    """``'sha256-...'`` of the page's inline import map, as CSP script-src expects it."""
    match = IMPORT_MAP_RE.search(page)
    if match is None:
        raise ValueError("the /app/ page has no <script type=\"importmap\">")
    digest = hashlib.sha256(match.group(1).encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


@lru_cache(maxsize=1)
def csp() -> str:
    return CSP.format(import_map=import_map_hash(_site()["index.html"].read_text("utf-8")))


def _etag(path: Path) -> str:
    st = path.stat()
    return f'"{st.st_size:x}-{st.st_mtime_ns:x}"'


def handle(handler, path: str) -> None:
    """Answer one GET for ``path`` on a BaseHTTPRequestHandler (serve.py's _Handler)."""
    try:
        _answer(handler, path)
    except (ConnectionError, TimeoutError, ssl.SSLError):
        handler.close_connection = True  # the viewer left mid-download


def _answer(handler, path: str) -> None:
    if path == PREFIX.rstrip("/"):
        return _plain(handler, 301, b"moved\n", {"Location": PREFIX})
    rel = path[len(PREFIX):] or "index.html"
    if not runtime_files():
        return _plain(handler, 503, f"{RUNTIME_MISSING}\n".encode(), {})
    file = _site().get(rel)
    if file is None:
        return _plain(handler, 404, b"not found\n", {})
    etag = _etag(file)
    headers = {**ISOLATION_HEADERS, "Cache-Control": "no-cache", "ETag": etag,
               "X-Content-Type-Options": "nosniff"}
    if rel == "index.html":
        headers["Content-Security-Policy"] = csp()
    if rel == "sw.js":
        headers["Service-Worker-Allowed"] = PREFIX
    if handler.headers.get("If-None-Match") == etag:
        return _send_headers(handler, 304, headers)
    headers["Content-Type"] = content_type(rel)
    headers["Content-Length"] = str(file.stat().st_size)
    _send_headers(handler, 200, headers)
    with open(file, "rb") as f:
        shutil.copyfileobj(f, handler.wfile, COPY_CHUNK_BYTES)


def _plain(handler, code: int, body: bytes, extra: dict[str, str]) -> None:
    _send_headers(handler, code, {**extra, "Content-Type": "text/plain; charset=utf-8",
                                  "Content-Length": str(len(body)), "Cache-Control": "no-store"})
    handler.wfile.write(body)


def _send_headers(handler, code: int, headers: dict[str, str]) -> None:
    handler.send_response(code)
    for name, value in {**handler.security_headers(), **headers}.items():
        handler.send_header(name, value)
    handler.end_headers()
