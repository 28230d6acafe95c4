"""Frames in and results out: the ends of the pipeline.

    sources.py       SourceConfig -> open_source(): the factory (and source_from_uri)
    videocapture.py  what camera and video share (cv2.VideoCapture, reconnecting a live one)
    camera.py        CameraSource: USB/V4L2 camera or frame grabber
    files.py         VideoFileSource (file or stream URL), ImageDirSource (image folder)
    picamera.py      PiCameraSource: the Raspberry Pi camera (picamera2)
    phantom.py       PhantomSource: the built-in synthetic ultrasound
    latest.py        LatestFrame: a reader thread keeping only the newest frame (live sources)
    pacing.py        Paced: plays a recording at a frame rate (--fps, --realtime, a watched cine)
    backoff.py       the one exponential backoff (live sources, the PACS outbox)
    sinks.py         WindowSink, VideoFileSink, MaskDirSink, NullSink
    dicom/           DICOM in and out, PACS sending (extra [dicom], imported only when asked)

Every source declares what it knows as ``info`` (edge.types.SourceInfo); the wrappers
(LatestFrame, Paced) pass it on.
"""
