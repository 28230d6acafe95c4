"""The outbox: DICOM files wait on disk until the PACS has acknowledged them.

A file enters the outbox (``DIR/outbox/<SOP Instance UID>.dcm``, written atomically) before
any sending, and leaves it only after the PACS said it stored it, so a PACS that is down, a
dropped connection or a killed run loses nothing: the next ``flush`` (the next run with
--pacs, or ``edge-run --pacs-flush``) sends what is left.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.fsutil import atomic_path, check_writable_dir
from edge.io.dicom.pacs import PacsError, PacsNode

OUTBOX = "outbox"
TRIES = 3  # connection attempts per flush
FIRST_BACKOFF_S = 0.5  # wait before the 2nd attempt; doubles after each failure


@dataclass
class FlushResult:
    sent: int
    kept: int
    error: str | None = None  # the last error when files were kept


class Outbox:
    """Pending files in ``folder`` (created)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = check_writable_dir(folder, "DICOM outbox")

    def add(self, path: Path, sop_instance_uid: str) -> Path:
        """Queue ``path`` for sending (a copy: the original stays where it was written)."""
        target = self.folder / f"{sop_instance_uid}.dcm"
        with atomic_path(target) as tmp:
            shutil.copyfile(path, tmp)
        return target

    def pending(self) -> list[Path]:
        return sorted(self.folder.glob("*.dcm"), key=lambda p: p.stat().st_mtime_ns)

    def flush(self, node: PacsNode, tries: int = TRIES, backoff_s: float = FIRST_BACKOFF_S,
              on_sent: Callable[[Path], None] | None = None) -> FlushResult:
        """Send every pending file; each leaves the outbox once the PACS acknowledged it.
        Transient failures are retried ``tries`` times with doubling waits; a permanent
        refusal stops at once. ``on_sent`` is called after each file (tests use it)."""
        sent, error, delay = 0, None, backoff_s
        for attempt in range(1, tries + 1):
            pending = self.pending()
            if not pending:
                return FlushResult(sent, 0)
            try:
                with node.session() as session:
                    for path in pending:
                        session.store(path)
                        path.unlink()
                        sent += 1
                        if on_sent is not None:
                            on_sent(path)
                return FlushResult(sent, 0)
            except PacsError as exc:
                error = f"{exc} (try {attempt} of {tries})"
                if exc.permanent:
                    break
            if attempt < tries:
                time.sleep(delay)
                delay *= 2.0
        return FlushResult(sent, len(self.pending()), error)


def flush_message(result: FlushResult, node: PacsNode, outbox: Outbox, retry_cmd: str) -> str:
    """One line for the run's output."""
    where = node.describe()
    if not result.kept:
        return f"pacs: sent {result.sent} file(s) to {where}"
    return (f"pacs: {result.error}; {result.kept} file(s) kept in {outbox.folder} "
            f"({result.sent} sent); send them later with `{retry_cmd}`")
