"""Frames in and results out: sources (cameras, files, the phantom, DICOM), the latest-frame
wrapper, and the sinks (window, recording, mask folder, DICOM/PACS)."""
