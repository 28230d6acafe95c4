"""edge-run's DICOM flags and ``--pacs-flush``. Plain argparse: importing this module loads no
DICOM library (edge.cli imports it for every run)."""

from __future__ import annotations

import argparse

from edge.errors import UserInputError
from edge.log import note, say

EXIT_OK = 0
EXIT_KEPT = 1  # files stay in the outbox: a runtime failure, retried later


def add_dicom_flags(ap: argparse.ArgumentParser) -> None:
    g = ap.add_argument_group("DICOM outputs (with --dicom input; extra [dicom])")
    g.add_argument("--dicom-out", type=str, metavar="DIR",
                   help="write a DICOM Segmentation (<name>.seg.dcm) and an overlay capture "
                        "(<name>.overlay.dcm) per input file into DIR (default: none)")
    g.add_argument("--pacs", type=str, metavar="HOST:PORT:AET|URL",
                   help="send them to a PACS: C-STORE to HOST:PORT with the called AE title, "
                        "or STOW-RS to a DICOMweb root URL; unsent files wait in DIR/outbox "
                        "(default: none)")
    g.add_argument("--pacs-flush", action="store_true",
                   help="only send what waits in --dicom-out DIR/outbox to --pacs, then exit "
                        "(default: off)")


def flush_outbox(dicom_out: str | None, pacs: str | None) -> int:
    """``edge-run --pacs-flush --dicom-out DIR --pacs NODE``: 0 when the outbox is empty
    afterwards, 1 when files are still kept."""
    if not dicom_out or not pacs:
        raise UserInputError("--pacs-flush needs --dicom-out DIR (whose outbox to send) and "
                             "--pacs NODE (where to)")
    from edge.io.dicom.outbox import OUTBOX, Outbox, flush_message
    from edge.io.dicom.pacs import PacsNode

    node = PacsNode.parse(pacs)
    outbox = Outbox(f"{dicom_out}/{OUTBOX}")
    result = outbox.flush(node)
    retry = f"edge-run --pacs-flush --dicom-out {dicom_out} --pacs {node.spec()}"
    message = flush_message(result, node, outbox, retry)
    (note if result.kept else say)(message)  # files kept: stderr, like an error line
    return EXIT_KEPT if result.kept else EXIT_OK
