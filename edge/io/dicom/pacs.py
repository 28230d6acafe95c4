"""Sending DICOM files to a PACS: C-STORE (DIMSE, pynetdicom) or STOW-RS (DICOMweb, urllib).

    node = PacsNode.parse("127.0.0.1:4242:ORTHANC")          host:port:called AE title
    node = PacsNode.parse("http://127.0.0.1:8042/dicom-web")  DICOMweb root (STOW-RS)
    with node.session() as s: s.store(path)                   raises PacsError

A PacsError is ``permanent`` when trying again cannot help (the PACS rejected our AE title,
refused the object, answered 4xx); otherwise (no answer, connection dropped, 5xx) the caller
retries with backoff (edge.io.dicom.outbox). Credentials in a URL (http://user:pass@host/...)
are sent as HTTP basic auth and never printed.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from edge.deps import require
from edge.errors import EdgeError, UserInputError

CALLING_AET = "NERVEEDGE"  # our AE title; a PACS that checks callers must know it
CONNECT_TIMEOUT_S = 5.0
NETWORK_TIMEOUT_S = 30.0
DIMSE_OK = frozenset({0x0000, 0xB000, 0xB006, 0xB007})  # success and the C-STORE warnings
HTTP_OK = frozenset({200, 202})  # 202: stored with warnings
_DIMSE_RE = re.compile(r"^(?P<host>[^:\s]+|\[[0-9A-Fa-f:.]+\]):(?P<port>\d{1,5})"
                       r":(?P<aet>[^:\s\\]{1,16})$")  # an AE title has at most 16 characters
PACS_HELP = "use --pacs HOST:PORT:AET (e.g. 127.0.0.1:4242:ORTHANC) or a DICOMweb URL"


class PacsError(EdgeError):
    """The PACS did not take a file. ``permanent``: retrying the same way cannot help."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class PacsNode:
    """A PACS: ``url`` (DICOMweb root) or ``host``/``port``/``aet`` (DIMSE)."""

    host: str = ""
    port: int = 0
    aet: str = ""
    url: str = ""
    calling_aet: str = CALLING_AET

    @classmethod
    def parse(cls, spec: str, calling_aet: str = CALLING_AET) -> PacsNode:
        text = (spec or "").strip()
        if text.lower().startswith(("http://", "https://")):
            return cls(url=text.rstrip("/"), calling_aet=calling_aet)
        match = _DIMSE_RE.match(text)
        if match is None:
            raise UserInputError(f"--pacs {spec!r}: {PACS_HELP}")
        port = int(match["port"])
        if not 0 < port <= 65535:
            raise UserInputError(f"--pacs {spec!r}: port {port} is not 1-65535; {PACS_HELP}")
        return cls(host=match["host"].strip("[]"), port=port, aet=match["aet"],
                   calling_aet=calling_aet)

    @property
    def is_web(self) -> bool:
        return bool(self.url)

    def spec(self) -> str:
        """What --pacs takes, without credentials (for the retry hint)."""
        return self.describe() if self.is_web else f"{self.host}:{self.port}:{self.aet}"

    def describe(self) -> str:
        """Where, for messages: the URL without credentials, or AET at host:port."""
        if self.is_web:
            parts = urlsplit(self.url)
            return urlunsplit(parts._replace(netloc=parts.hostname + (
                f":{parts.port}" if parts.port else "")))
        return f"{self.aet} at {self.host}:{self.port}"

    @contextlib.contextmanager
    def session(self) -> Iterator[_StowSession | _DimseSession]:
        session = _StowSession(self) if self.is_web else _DimseSession(self)
        try:
            yield session
        finally:
            session.close()


class _DimseSession:
    """One association, opened on the first store (contexts for the file's SOP class)."""

    def __init__(self, node: PacsNode) -> None:
        self.node = node
        self._assoc = None
        self._contexts: set[tuple[str, str]] = set()

    def _open(self, sop_class: str, syntax: str):
        pynetdicom = require("pynetdicom")
        from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

        # pynetdicom logs failed connections itself; our one line says it better.
        logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
        ae = pynetdicom.AE(ae_title=self.node.calling_aet)
        ae.connection_timeout = CONNECT_TIMEOUT_S
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = NETWORK_TIMEOUT_S
        syntaxes = list(dict.fromkeys([syntax, ExplicitVRLittleEndian, ImplicitVRLittleEndian]))
        ae.add_requested_context(sop_class, syntaxes)
        assoc = ae.associate(self.node.host, self.node.port, ae_title=self.node.aet)
        where = self.node.describe()
        if assoc.is_rejected:
            raise PacsError(f"PACS {where} rejected the association: check the called AE "
                            f"title and that it accepts {self.node.calling_aet}", permanent=True)
        if not assoc.is_established:
            raise PacsError(f"PACS {where} did not answer (connection refused or timed out)")
        self._contexts = {(sop_class, syntax)}
        return assoc

    def store(self, path: Path) -> None:
        pydicom = require("pydicom")
        ds = pydicom.dcmread(path)
        key = (str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID))
        if self._assoc is None or not self._assoc.is_established or key not in self._contexts:
            self.close()
            self._assoc = self._open(*key)
        status = self._assoc.send_c_store(ds)
        if not status or "Status" not in status:
            self.close()
            raise PacsError(f"PACS {self.node.describe()} dropped the connection while "
                            f"storing {path.name}")
        code = int(status.Status)
        if code not in DIMSE_OK:
            raise PacsError(f"PACS {self.node.describe()} refused {path.name} "
                            f"(C-STORE status 0x{code:04X})", permanent=True)

    def close(self) -> None:
        if self._assoc is not None:
            with contextlib.suppress(Exception):  # closing a dead association is fine
                if self._assoc.is_established:
                    self._assoc.release()
            self._assoc = None


class _StowSession:
    """STOW-RS: one POST per file to {root}/studies (multipart/related, application/dicom)."""

    def __init__(self, node: PacsNode) -> None:
        self.node = node
        parts = urlsplit(node.url)
        self._auth = None
        if parts.username is not None:
            pair = f"{parts.username}:{parts.password or ''}".encode()
            self._auth = "Basic " + base64.b64encode(pair).decode()
            netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
            parts = parts._replace(netloc=netloc)
        self._studies = urlunsplit(parts).rstrip("/") + "/studies"

    def _request(self, body: bytes, boundary: str) -> urllib.request.Request:
        headers = {
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
        }
        if self._auth:
            headers["Authorization"] = self._auth
        return urllib.request.Request(self._studies, data=body, headers=headers, method="POST")

    def store(self, path: Path) -> None:
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode())
        where = self.node.describe()
        try:
            with urllib.request.urlopen(self._request(body, boundary),
                                        timeout=NETWORK_TIMEOUT_S) as reply:
                code = reply.status
        except urllib.error.HTTPError as exc:
            permanent = 400 <= exc.code < 500 and exc.code not in (408, 429)
            raise PacsError(f"PACS {where} refused {path.name} (HTTP {exc.code} {exc.reason})",
                            permanent=permanent) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PacsError(f"PACS {where} did not answer ({reason})") from None
        if code not in HTTP_OK:
            raise PacsError(f"PACS {where} answered HTTP {code} for {path.name}", permanent=True)

    def close(self) -> None:
        """Nothing held between requests."""
