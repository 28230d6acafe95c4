"""The mDNS announcement for real, in a network namespace of this test's own (``unshare -n``:
nothing leaves it, no packet reaches any real network): its loopback with a private address
and multicast, a web view on 0.0.0.0 announcing ``nerve-edge-HOST.local``, and a zeroconf
browser in the same namespace that resolves the name to that address and finds the HTTPS
service.
Needs root, ``unshare`` and ``ip``; skips with the reason otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ADDRESS = "10.99.0.1"
# The namespace's only link is its own loopback: given a private address, multicast and the
# default route, it stands in for the clinic Wi-Fi (the board's "LAN address" is ADDRESS).
SETUP = ["ip link set lo up", "ip link set lo multicast on", f"ip addr add {ADDRESS}/32 dev lo",
         f"ip route add default dev lo src {ADDRESS}", "ip route add 224.0.0.0/4 dev lo"]
CHILD = """
from zeroconf import Zeroconf
from edge.view.mdns import SERVICE, board_name
from edge.view.serve import ServeSink
sink = ServeSink.from_spec("0.0.0.0:0", log=None)
name = board_name()
zc = Zeroconf()
info = zc.get_service_info(SERVICE, name.removesuffix(".local") + "." + SERVICE, timeout=8000)
sink.close()
zc.close()
assert info is not None, "no service answered"
print("FOUND", info.server, info.port == sink.port, info.parsed_addresses())
"""


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root for a network namespace (unshare -n)"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare (util-linux) or ip (iproute2) missing"
    probe = subprocess.run(["unshare", "-n", "sh", "-c", " && ".join(SETUP)],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot set up a network namespace here ({probe.stderr.strip()})"
    return None


def test_board_name_is_announced_and_resolved_inside_a_private_namespace():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    script = " && ".join(SETUP) + f" && exec {sys.executable} -c \"$CHILD\""
    env = dict(os.environ, CHILD=CHILD, PYTHONPATH=str(REPO))
    got = subprocess.run(["unshare", "-n", "sh", "-c", script], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert got.returncode == 0, got.stderr[-2000:]
    found = got.stdout.split("FOUND", 1)[1].split()
    from edge.view.mdns import board_name

    assert found[0] == board_name() + "." and found[1] == "True" and ADDRESS in found[2]
