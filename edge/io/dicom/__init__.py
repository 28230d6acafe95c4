"""DICOM for edge-run (extra ``[dicom]``): imported only when a run asks for it.

    read.py     DicomSource: files or folders, single frames and cine loops (pydicom)
    regions.py  Sequence of Ultrasound Regions -> default ROI and the area of one pixel in mm2
                (the area itself, px or mm2: edge.stats.NerveArea, shared with the run loop)
    seg.py      DICOM Segmentation (highdicom) and Secondary Capture of the overlays
    sink.py     DicomSink: collects the masks of a run and writes the DICOM files at close
    pacs.py     PacsNode: C-STORE (pynetdicom) and STOW-RS (urllib); transient or permanent
    outbox.py   Outbox: files wait on disk until the PACS has them (retried: edge.io.backoff)
    flags.py    edge-run's --dicom-out / --pacs / --pacs-flush (plain argparse)

Nothing here imports pydicom, highdicom or pynetdicom at module level, so importing
edge.io.dicom costs nothing when the run does not use DICOM.
"""
