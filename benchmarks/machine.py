"""Describe the machine a benchmark ran on: CPU model, cores, ISA flags, runtime versions.

Every result carries this block, so a number is never separated from the hardware and
software that produced it. Reads /proc/cpuinfo on Linux and falls back
to the platform module elsewhere; never imports TensorFlow (its version is read from the
installed package metadata).
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# ISA features that decide int8/float convolution speed; reported when present.
ISA_FLAGS_OF_INTEREST = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni",
    "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
    # ARM (the "Features" line): NEON is "asimd", int8 dot product "asimddp", "i8mm".
    "asimd", "asimddp", "asimdhp", "i8mm", "sve", "sve2", "bf16",
)
RUNTIME_PACKAGES = (
    "ai-edge-litert", "tflite-runtime", "onnxruntime", "onnx", "tensorflow", "tf-keras",
    "numpy", "opencv-python-headless",
)


def _cpuinfo_fields(text: str) -> dict[str, str]:
    """First value of each key in /proc/cpuinfo (the first core describes them all)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key and key not in out:
            out[key] = value.strip()
    return out


def cpu_description(cpuinfo_text: str | None = None) -> dict:
    """CPU model, logical cores and the ISA flags of interest."""
    if cpuinfo_text is None:
        cpuinfo_text = CPUINFO.read_text(errors="replace") if CPUINFO.exists() else ""
    fields = _cpuinfo_fields(cpuinfo_text)
    model = (fields.get("model name") or fields.get("Model") or fields.get("Hardware")
             or platform.processor() or platform.machine())
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_model": model,
        "arch": platform.machine(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "isa_flags": [f for f in ISA_FLAGS_OF_INTEREST if f in flags],
    }


def runtime_versions() -> dict[str, str]:
    """Installed versions of the runtimes that matter (None when absent)."""
    versions: dict[str, str] = {"python": platform.python_version()}
    for name in RUNTIME_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def describe_machine() -> dict:
    """The block every result file carries under "machine"."""
    return {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        **cpu_description(),
        "runtimes": runtime_versions(),
    }
