"""The model room: a model file opened into one object (backend + resolved settings + classes).

Pre-processing, the backends, the sidecar, post-processing and the one evaluator live here.
This __init__ stays light (no runtime imports): `edge.model.backends` loads an interpreter only
when a model is opened.
"""
