"""MACs from model files match the hand count; machine description parsing."""

from __future__ import annotations

import pytest

from benchmarks import macs
from benchmarks.machine import cpu_description, describe_machine
from edge.errors import ModelError, UserInputError


@pytest.mark.parametrize("key", ["tflite_fp32", "tflite_int8", "onnx", "keras"])
def test_macs_match_hand_count(tiny_models, tiny_macs, key):
    assert macs.count_model_macs(tiny_models[key]) == tiny_macs


def test_keras_count_macs_agrees(tiny_models, tiny_macs):
    from train.model import count_macs
    from train.modelio import load_keras

    assert count_macs(load_keras(tiny_models["keras"])) == tiny_macs


def test_precision_is_read_from_the_graph(tiny_models):
    assert macs.model_precision(tiny_models["tflite_int8"]) == "int8"
    assert macs.model_precision(tiny_models["tflite_fp32"]) == "float32"
    assert macs.model_precision(tiny_models["onnx"]) == "float32"


def test_onnx_gemm_macs(tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((8, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [w])
    path = tmp_path / "gemm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert macs.onnx_macs(path) == 8 * 3


def test_unknown_suffix_and_broken_file(tmp_path, broken_model):
    with pytest.raises(UserInputError, match="unknown model format '.pt'"):
        macs.model_format(tmp_path / "model.pt")
    with pytest.raises(ModelError, match="broken.tflite"):
        macs.tflite_macs(broken_model)


X86_CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni amx_tile amx_int8
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
"""
ARM_CPUINFO = """processor\t: 0
Features\t: fp asimd evtstrm crc32 asimddp
Hardware\t: BCM2835
"""


def test_cpu_description_reads_model_and_isa_flags():
    x86 = cpu_description(X86_CPUINFO)
    assert x86["cpu_model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert {"avx512f", "avx512_vnni", "amx_int8", "amx_tile", "avx2"} <= set(x86["isa_flags"])
    assert "asimd" not in x86["isa_flags"]
    arm = cpu_description(ARM_CPUINFO)
    assert arm["cpu_model"] == "BCM2835"
    assert arm["isa_flags"] == ["asimd", "asimddp"]


def test_describe_machine_has_runtimes():
    m = describe_machine()
    assert m["logical_cores"] >= 1
    assert "python" in m["runtimes"] and "numpy" in m["runtimes"]


def test_benchmarks_import_without_tensorflow():
    """.tflite/.onnx benchmarks must work on a device without TensorFlow: importing every
    benchmark module must not pull it in (it is imported lazily, for Keras models only)."""
    import subprocess
    import sys

    code = ("import sys, benchmarks.cli, benchmarks.compare, benchmarks.latency, "
            "benchmarks.accuracy, benchmarks.ceiling, benchmarks.pipeline, benchmarks.report; "
            "sys.exit(3 if 'tensorflow' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
