"""The outbox: DICOM files wait on disk until the PACS has acknowledged them.

A file enters the outbox (``DIR/outbox/<SOP Instance UID>.dcm``, written atomically) before
any sending, and leaves it only after the PACS said it stored it, so a PACS that is down, a
dropped connection or a killed run loses nothing: the next ``flush`` (the next run with
--pacs, or ``edge-run --pacs-flush``) sends what is left.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.fsutil import atomic_path, check_writable_dir
from edge.io.backoff import Backoff, retry
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
        Transient failures are retried ``tries`` times in all, with doubling waits
        (edge.io.backoff); a permanent refusal stops at once. ``on_sent`` is called after
        each file (tests use it)."""
        attempt = _Flush(self, node, tries, on_sent)
        result = attempt()
        if result is None:
            result = retry(attempt, Backoff(first_s=backoff_s, retries=tries - 1))
        return result or FlushResult(attempt.sent, len(self.pending()), attempt.error)


class _Flush:
    """One try at sending the outbox: a FlushResult when done (all sent, or refused for
    good), None when a transient failure is worth another try."""

    def __init__(self, outbox: Outbox, node: PacsNode, tries: int,
                 on_sent: Callable[[Path], None] | None) -> None:
        self.outbox, self.node, self.tries, self.on_sent = outbox, node, tries, on_sent
        self.sent, self.tried, self.error = 0, 0, None

    def __call__(self) -> FlushResult | None:
        self.tried += 1
        pending = self.outbox.pending()
        if not pending:
            return FlushResult(self.sent, 0)
        try:
            with self.node.session() as session:
                for path in pending:
                    session.store(path)
                    path.unlink()
                    self.sent += 1
                    if self.on_sent is not None:
                        self.on_sent(path)
            return FlushResult(self.sent, 0)
        except PacsError as exc:
            self.error = f"{exc} (try {self.tried} of {self.tries})"
            if exc.permanent:
                return FlushResult(self.sent, len(self.outbox.pending()), self.error)
        return None


def flush_message(result: FlushResult, node: PacsNode, outbox: Outbox, retry_cmd: str) -> str:
    """One line for the run's output."""
    where = node.describe()
    if not result.kept:
        return f"pacs: sent {result.sent} file(s) to {where}"
    return (f"pacs: {result.error}; {result.kept} file(s) kept in {outbox.folder} "
            f"({result.sent} sent); send them later with `{retry_cmd}`")
