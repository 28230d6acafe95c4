"""Pairing a tablet by QR code: scan once, then a cookie instead of the token.

The pairing secret lives in the state folder (0600), so pairing survives restarts;
``edge-run --serve-unpair`` makes a new one, and every tablet must scan again. The QR code
holds ``https://NAME:PORT/pair?secret=...``; that request sets a cookie (HttpOnly, Secure,
SameSite=Strict) whose value is derived from the secret (never the secret itself) and
redirects to ``/``, so the secret leaves the address bar and the history at once.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
from pathlib import Path

from edge.view.state import write_private

SECRET_FILE = "pair.secret"
SECRET_BYTES = 16  # 128 bits (22 characters): a small QR code, beyond any guessing
COOKIE = "nerve_edge_pair"
COOKIE_MAX_AGE_S = 400 * 24 * 3600  # the longest browsers keep a cookie (400 days)
PAIR_PATH = "/pair"
QR_PATH = "/pair.png"  # the QR code as an image, for the board's own screen
QR_PNG_SCALE = 8  # pixels per module in /pair.png: readable from a screen at arm's length


def load_secret(folder: Path) -> str:
    """The board's pairing secret (made on first use)."""
    path = folder / SECRET_FILE
    try:
        secret = path.read_text("ascii").strip()
    except (OSError, UnicodeDecodeError):
        secret = ""
    return secret if len(secret) >= SECRET_BYTES else rotate_secret(folder)


def rotate_secret(folder: Path) -> str:
    """A new secret: every cookie made from the old one stops working."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    write_private(folder / SECRET_FILE, (secret + "\n").encode("ascii"))
    return secret


def cookie_value(secret: str) -> str:
    return hmac.new(secret.encode(), b"nerve-edge pairing cookie", hashlib.sha256).hexdigest()


def set_cookie_header(secret: str) -> str:
    return (f"{COOKIE}={cookie_value(secret)}; Max-Age={COOKIE_MAX_AGE_S}; Path=/; Secure; "
            "HttpOnly; SameSite=Strict")


def cookie_ok(header: str | None, secret: str) -> bool:
    """True when the Cookie header holds this board's pairing cookie."""
    from http.cookies import CookieError, SimpleCookie

    if not header:
        return False
    try:
        jar = SimpleCookie(header)
    except CookieError:
        return False
    morsel = jar.get(COOKIE)
    return morsel is not None and hmac.compare_digest(morsel.value.encode(),
                                                      cookie_value(secret).encode())


def secret_ok(given: list[str], secret: str) -> bool:
    return len(given) == 1 and hmac.compare_digest(given[0].encode(), secret.encode())


def pair_url(base_url: str, secret: str) -> str:
    """``base_url`` ("https://name:port/") + the pairing path and secret."""
    return base_url.rstrip("/") + f"{PAIR_PATH}?secret={secret}"


def qr_text(url: str) -> str:
    """The QR code as Unicode half blocks (two modules per character row) for a terminal."""
    import segno

    out = io.StringIO()
    segno.make(url, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue().rstrip("\n")


def qr_png(url: str) -> bytes:
    import segno

    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="png", scale=QR_PNG_SCALE, border=4)
    return out.getvalue()
