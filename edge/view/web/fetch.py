"""`edge-run --fetch-web-runtime`: the /app/ runner's runtime (LiteRT.js) on an installed kit.

`make web-runtime` fetches it with npm into a source checkout; a board installed with a plain
`pip install` (docs/deploy-pi.md) has no npm and, unless the wheel was built after `make
web-runtime`, no runtime. This downloads the same pinned npm tarballs (@litertjs/core and
@litertjs/wasm-utils) from the npm registry with the standard library, checks each against
its pinned sha512, and unpacks them where edge.view.web.site looks (edge/view/web/vendor/ inside the
installed package), atomically: a half-fetched runtime is never served.

Set NERVE_EDGE_NPM_REGISTRY to use a mirror (default https://registry.npmjs.org).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from edge.errors import EdgeError, OutputError
from edge.view.web.site import VENDOR_DIR

LITERTJS_VERSION = "2.5.3"  # the Makefile's LITERTJS_VERSION (a test keeps them equal)
# npm's dist.integrity of each tarball at LITERTJS_VERSION: the registry must serve these bytes.
PINNED_SHA512 = {
    "core": "PlGmbMOq9WitX7FO0jhbdJw9GthatsyuCQXjTt/wJZo0FLaw48q4tz8IwqgqCIkviYGr9OFDL1kCn"
            "N4nzWoyJQ==",
    "wasm-utils": "4fJiw6tBQnIs+0jH/OQ16nYOiSl8/+zZnn5h2ul8aTKHi05sVqZW580Tmk78pC2kT39A9OYBVdF"
                  "awteZ/sI1kQ==",
}
DEFAULT_REGISTRY = "https://registry.npmjs.org"
REGISTRY_ENV = "NERVE_EDGE_NPM_REGISTRY"
TIMEOUT_S = 60  # per network read; the tarballs are ~10 MB (core) and ~5 kB
CHUNK = 1 << 20
PROGRESS_EVERY = 4 << 20  # one progress line per 4 MB
MAX_TARBALL = 200 << 20  # a sane upper bound: never read an endless response into memory


class FetchError(EdgeError):
    """The registry could not be reached or served other bytes than pinned: exit 1."""


def tarball_url(registry: str, package: str, version: str = LITERTJS_VERSION) -> str:
    return f"{registry.rstrip('/')}/@litertjs/{package}/-/{package}-{version}.tgz"


def sha512_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha512(data).digest()).decode()


def download(url: str, say=print) -> bytes:
    """The bytes at ``url`` with a progress line every few MB (FetchError naming the URL)."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:  # noqa: S310 (https/http)
            total = int(resp.headers.get("Content-Length") or 0)
            buf, next_note = io.BytesIO(), PROGRESS_EVERY
            while chunk := resp.read(CHUNK):
                buf.write(chunk)
                if buf.tell() > MAX_TARBALL:
                    raise FetchError(f"{url}: larger than {MAX_TARBALL >> 20} MB; not a "
                                     f"@litertjs tarball")
                if buf.tell() >= next_note:
                    of = f" of {total / 1e6:.1f}" if total else ""
                    say(f"  {buf.tell() / 1e6:.1f}{of} MB")
                    next_note += PROGRESS_EVERY
            return buf.getvalue()
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise FetchError(f"cannot download {url}: {reason}; check the network (or a proxy: "
                         f"https_proxy), or set {REGISTRY_ENV} to an npm mirror") from err


def safe_members(tar: tarfile.TarFile, url: str) -> list[tarfile.TarInfo]:
    """Regular files and folders under package/ only: no links, devices or paths out of it."""
    members = []
    for m in tar.getmembers():
        parts = PurePosixPath(m.name).parts
        if (not (m.isfile() or m.isdir()) or PurePosixPath(m.name).is_absolute()
                or ".." in parts or not parts or parts[0] != "package"):
            raise FetchError(f"{url}: unexpected entry {m.name!r} in the tarball; not a "
                             f"@litertjs package")
        members.append(m)
    return members


def unpack(data: bytes, dest: Path, url: str) -> None:
    """An npm tarball (package/...) -> dest/... (regular files only)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for m in safe_members(tar, url):
            if not m.isfile():
                continue
            target = dest / PurePosixPath(m.name).relative_to("package")
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(m) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)


def fetch_web_runtime(vendor_dir: Path | None = None, registry: str | None = None,
                      pins: dict[str, str] | None = None, say=print) -> Path:
    """Download, verify and install the pinned LiteRT.js packages; returns the folder.

    Installs into ``vendor_dir/node_modules/@litertjs`` (the layout `make web-runtime` leaves),
    replacing what was there only once both tarballs are verified and unpacked.
    """
    vendor = Path(vendor_dir) if vendor_dir else VENDOR_DIR.parent.parent
    registry = registry or os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY
    pins = PINNED_SHA512 if pins is None else pins
    target = vendor / "node_modules" / "@litertjs"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=target.parent))
    except OSError as err:
        raise OutputError(f"--fetch-web-runtime: cannot write into {vendor} ({err.strerror}); "
                          f"run it as the user that installed nerve-edge, e.g. sudo "
                          f"{Path(sys.argv[0]).name} --fetch-web-runtime") from err
    try:
        for package, pinned in pins.items():
            url = tarball_url(registry, package)
            say(f"fetch-web-runtime: downloading {url}")
            data = download(url, say)
            if sha512_b64(data) != pinned:
                raise FetchError(f"{url}: sha512 does not match the pinned @litertjs/{package}"
                                 f"@{LITERTJS_VERSION}; the registry (or a proxy) served other "
                                 f"bytes: nothing was installed")
            unpack(data, staging / package, url)
        old = target.with_name(target.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        (vendor / f".installed-{LITERTJS_VERSION}").touch()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
