"""A clinic's own frames, labelled: choose (select), pre-label (predict), exchange with Label
Studio (labelstudio) or any COCO tool (coco), and write the folder layout edge-train reads
(images/ + masks/ of class ids). numpy + OpenCV (+ pycocotools for COCO): no TensorFlow, so
these run in a device-like venv too. docs/clinic.md walks through them.
"""
