"""What HTTPS costs the web view (issue 23), measured on loopback: HTTP vs HTTPS, alternating.

For each round and scheme it starts ``edge-run --source phantom --headless --serve
127.0.0.1:PORT`` (``--tls on`` for HTTPS, the CA in a temp state folder), waits for frames,
then measures:
  * time to first frame: a fresh connection (TCP + TLS handshake) fetching /frame.jpg, N times;
  * edge-run's CPU share (utime + stime from /proc, % of one core) for S seconds with no
    viewer, then with one viewer streaming /stream.mjpg (and the parts it receives per
    second). The phantom is paced at PIPELINE_FPS (--realtime --fps), like a camera, so the
    difference is what the viewer costs.
Prints a Markdown table (medians over rounds) with the machine.

    python scripts/serve_tls_bench.py [--rounds 3] [--connects 30] [--stream-s 10]
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")
PIPELINE_FPS = 30  # the phantom paced like a camera, so the pipeline leaves the CPU free


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def connect(port: int, ctx):
    if ctx is None:
        return http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=ctx)


def start(tls: bool, state: str):
    port = free_port()
    cmd = [sys.executable, "-m", "edge.cli", "--source", "phantom", "--headless", "--quiet",
           "--realtime", "--fps", str(PIPELINE_FPS), "--threads", "1",
           "--serve", f"127.0.0.1:{port}", "--no-mdns"]
    cmd += ["--tls", "on"] if tls else []
    env = dict(os.environ, XDG_STATE_HOME=state, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    ctx = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if tls and ctx is None:
                ctx = ssl.create_default_context(cafile=f"{state}/nerve-edge/ca.crt")
            conn = connect(port, ctx)
            conn.request("GET", "/frame.jpg")
            if conn.getresponse().status == 200:
                conn.close()
                return proc, port, ctx
            conn.close()
        except (OSError, ssl.SSLError):
            ctx = None if tls else ctx
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("edge-run did not serve a frame within 60 s")


def first_frame_ms(port: int, ctx, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn = connect(port, ctx)
        conn.request("GET", "/frame.jpg")
        resp = conn.getresponse()
        resp.read()
        times.append((time.perf_counter() - t0) * 1000.0)
        conn.close()
    return statistics.median(times)


def idle_share(pid: int, seconds: float) -> float:
    c0, t0 = cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_s(pid) - c0) / (time.monotonic() - t0) * 100.0


def stream(port: int, ctx, pid: int, seconds: float) -> tuple[float, float]:
    conn = connect(port, ctx)
    conn.request("GET", "/stream.mjpg")
    resp = conn.getresponse()
    parts, c0, t0 = 0, cpu_s(pid), time.monotonic()
    while time.monotonic() - t0 < seconds:
        line = resp.readline()
        if line.startswith(b"Content-Length:"):
            resp.readline()
            resp.read(int(line.split(b":")[1]))
            parts += 1
    wall = time.monotonic() - t0
    share = (cpu_s(pid) - c0) / wall * 100.0
    resp.close()
    conn.close()
    return parts / wall, share


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    load = os.getloadavg()[0]
    return (f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, OpenSSL {ssl.OPENSSL_VERSION.split()[1]}, "
            f"load average {load:.1f} at start")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connects", type=int, default=30)
    ap.add_argument("--stream-s", type=float, default=10.0)
    args = ap.parse_args()
    rows: dict[str, list[tuple[float, float, float]]] = {"http": [], "https": []}
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory() as state:
        for r in range(args.rounds):
            for scheme in ("http", "https"):
                proc, port, ctx = start(scheme == "https", state)
                try:
                    ttf = first_frame_ms(port, ctx, args.connects)
                    idle = idle_share(proc.pid, args.stream_s)
                    fps, share = stream(port, ctx, proc.pid, args.stream_s)
                finally:
                    proc.terminate()
                    proc.wait(30)
                rows[scheme].append((ttf, fps, idle, share, share - idle))
                print(f"round {r + 1} {scheme:5}: first frame {ttf:.2f} ms, MJPEG {fps:.1f} "
                      f"frames/s, edge-run CPU {idle:.1f}% idle, {share:.1f}% streaming",
                      flush=True)
    print("\n| | time to first frame (median ms) | MJPEG frames/s | edge-run CPU, no viewer "
          "(% of a core) | one viewer | the viewer's share |")
    print("|---|---|---|---|---|---|")
    for scheme, got in rows.items():
        med = [statistics.median(v) for v in zip(*got, strict=True)]
        print(f"| {scheme} | {med[0]:.2f} | {med[1]:.1f} | {med[2]:.1f} | {med[3]:.1f} | "
              f"{med[4]:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
