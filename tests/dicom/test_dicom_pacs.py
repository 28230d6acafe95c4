"""PACS node specs and the outbox's retry logic (no PACS needed: a scripted stand-in)."""

from __future__ import annotations

import contextlib

import pytest

from edge.errors import UserInputError
from edge.io import backoff
from edge.io.dicom import outbox as outbox_mod
from edge.io.dicom.outbox import Outbox, flush_message
from edge.io.dicom.pacs import PacsError, PacsNode


def test_parse_dimse_and_dicomweb_specs() -> None:
    node = PacsNode.parse("10.1.2.3:104:HOSPITAL_PACS")
    assert (node.host, node.port, node.aet) == ("10.1.2.3", 104, "HOSPITAL_PACS")
    assert not node.is_web
    assert node.spec() == "10.1.2.3:104:HOSPITAL_PACS"
    web = PacsNode.parse("https://user:secret@pacs.example/dicom-web/")
    assert web.is_web and web.url == "https://user:secret@pacs.example/dicom-web"
    assert "secret" not in web.describe() and "secret" not in web.spec()


@pytest.mark.parametrize("spec", ["pacs", "host:104", "host:99999:AET", "host:104:" + "A" * 17,
                                  "ftp://x/y"])
def test_bad_specs_are_one_clear_error(spec) -> None:
    with pytest.raises(UserInputError, match="--pacs"):
        PacsNode.parse(spec)


class ScriptedNode:
    """A PacsNode stand-in: ``script`` says per store call 'ok', 'down' or 'refuse'."""

    def __init__(self, *script: str) -> None:
        self.script, self.stored = list(script), []

    def describe(self) -> str:
        return "TEST at 127.0.0.1:1"

    @contextlib.contextmanager
    def session(self):
        yield self

    def store(self, path) -> None:
        step = self.script.pop(0) if self.script else "ok"
        if step == "down":
            raise PacsError("PACS TEST did not answer")
        if step == "refuse":
            raise PacsError("PACS TEST refused it", permanent=True)
        self.stored.append(path.read_bytes())


@pytest.fixture
def box(tmp_path, monkeypatch):
    waits = []
    monkeypatch.setattr(backoff.time, "sleep", waits.append)  # looked up at call time
    box = Outbox(tmp_path / "outbox")
    for i in range(3):
        src = tmp_path / f"f{i}.dcm"
        src.write_bytes(f"file {i}".encode())
        box.add(src, f"1.2.3.{i}")
    box.waits = waits
    return box


def test_files_leave_the_outbox_only_when_stored(box) -> None:
    node = ScriptedNode("ok", "down", "ok", "ok")
    result = box.flush(node)
    assert (result.sent, result.kept) == (3, 0) and not box.pending()
    assert sorted(node.stored) == [b"file 0", b"file 1", b"file 2"]
    assert box.waits == [outbox_mod.FIRST_BACKOFF_S]  # one retry after the drop


def test_a_pacs_that_stays_down_keeps_everything_with_backoff(box) -> None:
    result = box.flush(ScriptedNode(*["down"] * 10), tries=3, backoff_s=0.5)
    assert (result.sent, result.kept) == (0, 3) and len(box.pending()) == 3
    assert box.waits == [0.5, 1.0]
    message = flush_message(result, ScriptedNode(), box, "edge-run --pacs-flush ...")
    assert "did not answer (try 3 of 3); 3 file(s) kept in" in message
    assert "edge-run --pacs-flush" in message


def test_a_refusal_is_not_retried(box) -> None:
    result = box.flush(ScriptedNode("ok", "refuse"))
    assert (result.sent, result.kept) == (1, 2) and box.waits == []
    assert "refused" in result.error
