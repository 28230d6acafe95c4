"""A small Label Studio HTTP client (standard library only): the few API calls push and pull
make, with errors that name the URL and the fix.

Tokens: a legacy token is sent as ``Authorization: Token T``; a personal access token (a JWT
refresh token, the default kind in Label Studio 1.23) is first exchanged for an access token
at ``/api/token/refresh/`` and sent as ``Authorization: Bearer A``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

from train.label.frames import LabelError

TIMEOUT_S = 60.0  # one call; an upload of a few frames on loopback takes well under a second


def is_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


class LabelStudio:
    def __init__(self, url: str, token: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise LabelError(f"--url {url}: give Label Studio's address, e.g. "
                             f"http://localhost:8080")
        self.url = url.rstrip("/")
        self.auth = f"Token {token}"
        if is_jwt(token):
            access = self.call("POST", "/api/token/refresh/", {"refresh": token}, auth=False)
            self.auth = f"Bearer {access['access']}"
        self.call("GET", "/api/current-user/whoami")  # a wrong token fails here, named

    def call(self, method: str, path: str, body=None, auth: bool = True, raw: bool = False,
             files: list[tuple[str, bytes]] | None = None):
        """JSON in, JSON out (bytes when ``raw``); LabelError on any failure."""
        headers, data = {}, None
        if files is not None:
            data, headers["Content-Type"] = _multipart(files)
        elif body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        if auth:
            headers["Authorization"] = self.auth
        target = path if path.startswith("http") else self.url + path
        request = urllib.request.Request(target, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                payload = response.read()
        except urllib.error.HTTPError as e:
            raise self._http_error(method, path, e) from e
        except (TimeoutError, urllib.error.URLError, ConnectionError) as e:
            reason = getattr(e, "reason", e)
            raise LabelError(f"Label Studio at {self.url} does not answer ({reason}): start it "
                             f"(label-studio start) or fix --url") from e
        if raw:
            return payload
        return json.loads(payload) if payload else None

    def _http_error(self, method: str, path: str, e: urllib.error.HTTPError) -> LabelError:
        detail = e.read()[:300].decode("utf-8", "replace").replace("\n", " ")
        if e.code in (401, 403):
            return LabelError(f"Label Studio at {self.url} refused the token (HTTP {e.code}): "
                              f"copy a valid one from Account & Settings into --token")
        return LabelError(f"Label Studio at {self.url}: {method} {path} failed with HTTP "
                          f"{e.code}: {detail}")

    def pages(self, path: str) -> list[dict]:
        """Every item of a paginated list endpoint ({"results": [...], "next": ...} or a list)."""
        sep = "&" if "?" in path else "?"
        out, page = [], 1
        while True:
            data = self.call("GET", f"{path}{sep}page={page}&page_size=100")
            if isinstance(data, list):
                return out + data
            out += data.get("results", data.get("tasks", []))
            if not data.get("next"):
                return out
            page += 1


def _multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, content in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                     .encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")
