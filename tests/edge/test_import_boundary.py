"""DESIGN principle 1: the device code never loads TensorFlow, Keras, train/ or convert/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
FORBIDDEN = ("tensorflow", "keras", "tf_keras", "train", "convert")

PROBE = f"""
import sys
import edge.cli, edge.loop, edge.model.backends, edge.model.postprocess, edge.meter
import edge.view.overlay
from edge.model.store import default_model_path
from edge.model.backends import open_backend
open_backend(default_model_path(), threads=1)   # the TFLite import chain, exercised
open_backend(default_model_path("onnx"), threads=1)
bad = sorted({{m.split(".")[0] for m in sys.modules}} & set({FORBIDDEN!r}))
print("loaded:", bad)
sys.exit(1 if bad else 0)
"""


def test_edge_loads_no_tensorflow_keras_train_or_convert():
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "loaded: []" in proc.stdout
