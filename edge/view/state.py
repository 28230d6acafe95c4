"""The web view's state folder: its TLS keys and certificates and the pairing secret.

Kept across restarts (a tablet trusts the CA and holds a pairing cookie once, not per run):
systemd's ``$STATE_DIRECTORY`` (/var/lib/nerve-edge under deploy/nerve-edge.service), else
``$XDG_STATE_HOME/nerve-edge``, else ``~/.local/state/nerve-edge``. Private files (keys, the
secret) are 0600 in a 0700 folder, written atomically (temp file + rename).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edge.errors import OutputError
from edge.fsutil import atomic_write_bytes, systemd_state_dir

APP_DIR = "nerve-edge"
PRIVATE_MODE = 0o600
DIR_MODE = 0o700


def state_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The folder (created 0700 when missing) where the web view keeps what must persist."""
    if explicit:
        folder = Path(explicit)
    elif (unit := systemd_state_dir()) is not None:
        folder = unit
    elif os.environ.get("XDG_STATE_HOME"):
        folder = Path(os.environ["XDG_STATE_HOME"]) / APP_DIR
    else:
        folder = Path.home() / ".local" / "state" / APP_DIR
    try:
        folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"state folder {folder}: cannot create it ({err.strerror}); set "
                          "XDG_STATE_HOME to a writable folder") from None
    return folder


def write_private(path: Path, data: bytes) -> Path:
    """``data`` into ``path``, mode 0600 from the first byte (mkstemp), then renamed in place."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise OutputError(f"{path}: cannot write in {path.parent} ({err.strerror}); make the "
                          "state folder writable") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, PRIVATE_MODE)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def write_public(path: Path, data: bytes) -> Path:
    """A certificate: readable by others (it is public), written atomically."""
    return atomic_write_bytes(path, data)
