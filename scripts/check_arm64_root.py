"""The emulated board for `make check-arm64`: a Debian bookworm arm64 root (what Raspberry Pi
OS 64-bit is built on), run through qemu-user-static: the host's preparation (tools, binfmt),
the cached root, its mounts and chroot. The device package is installed in it by
check_arm64_install, pip-installed from the aarch64 wheels a Pi would get.

Every step is a small function; the root is built once and cached (see ``build_root``).
Standard library only. Needs root (mount, chroot, binfmt registration).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

SUITE = "bookworm"  # Raspberry Pi OS (64-bit) 12 = Debian bookworm arm64
ARCH = "arm64"
# python3-numpy: Debian's numpy 1.24, what apt's picamera2 and simplejpeg are built against on
# Raspberry Pi OS bookworm (Debian has no picamera2 package; its numpy stands in for it).
ROOT_PACKAGES = "python3,python3-venv,python3-pip,python3-numpy,ca-certificates"
PROGRESS_EVERY_S = 30  # a long step (debootstrap, emulated pip) says where it is this often
DEFAULT_MIRROR = "http://deb.debian.org/debian"
HOST_TOOLS = {"debootstrap": "debootstrap", "qemu-aarch64-static": "qemu-user-static",
              "update-binfmts": "binfmt-support"}
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
BINFMT_NAME = "qemu-aarch64"
DEBIAN_BINFMT_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
# qemu's own aarch64 ELF magic/mask (scripts/qemu-binfmt-conf.sh); F = the kernel opens the
# interpreter at registration, so it also runs inside a chroot that lacks it.
FALLBACK_BINFMT = (r":qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                   r"\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff"
                   r"\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F")
BUILT_STAMP = ".nerve-edge-root-ok"  # written last: a root without it is half-built
WORK = "/opt/nerve-edge-check"  # frames and outputs of one check, inside the root
PASS_ENV = re.compile(r"^(PIP_|https?_proxy$|HTTPS?_PROXY$|no_proxy$|NO_PROXY$)")
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The CPU qemu emulates (QEMU_CPU) and the /proc/cpuinfo the root sees: (board, MIDR variant,
# part, revision). qemu-user 7.2 shows the host's x86 /proc/cpuinfo to arm64 programs;
# cpuinfo (inside ONNX Runtime, XNNPACK) then finds no ARM core and ONNX Runtime 1.32
# segfaults at import. A board's real cpuinfo lines fix that and make kernel choice match it.
CPUS = {"cortex-a72": ("Raspberry Pi 4 (BCM2711)", "0x0", "0xd08", "3"),
        "cortex-a76": ("Raspberry Pi 5 (BCM2712)", "0x4", "0xd0b", "1")}
DEFAULT_CPU = "cortex-a72"
CPUINFO_FILE = "etc/nerve-edge-cpuinfo"  # inside the root, bound over /proc/cpuinfo


class Skip(Exception):
    """This machine cannot run arm64 binaries (not root, no qemu, no binfmt_misc)."""


def say(text: str) -> None:
    print(f"check-arm64: {text}", flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, **kwargs)


# ---------------------------------------------------------------- host preparation

def ensure_host_tools() -> None:
    """debootstrap + qemu-user-static + binfmt-support from Debian, installed when missing."""
    missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None})
    if not missing:
        return
    if shutil.which("apt-get") is None:
        raise Skip(f"{', '.join(missing)} missing and no apt-get to install them")
    say(f"installing {' '.join(missing)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    got = subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if got.returncode != 0 or shutil.which("qemu-aarch64-static") is None:
        raise Skip(f"could not install {' '.join(missing)}: {got.stderr.strip()[-200:]}")


def binfmt_line() -> str:
    """Debian's registration line (interpreter with the F flag) or qemu's own."""
    if DEBIAN_BINFMT_CONF.is_file():
        line = DEBIAN_BINFMT_CONF.read_text().strip()
        if line.rsplit(":", 1)[-1].count("F"):
            return line
    return FALLBACK_BINFMT


def entry_flags(entry_text: str) -> str:
    """The 'flags: OCF' value of a /proc/sys/fs/binfmt_misc/NAME file ('' if none)."""
    match = re.search(r"^flags:\s*(\S*)", entry_text, re.M)
    return match.group(1) if match else ""


def register_binfmt() -> None:
    """Mount binfmt_misc if needed and register qemu's aarch64 handler with the F flag."""
    if not (BINFMT_DIR / "register").exists():
        got = subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)],
                             capture_output=True, text=True)
        if got.returncode != 0:
            raise Skip(f"cannot mount binfmt_misc at {BINFMT_DIR}: {got.stderr.strip()}")
    entry = BINFMT_DIR / BINFMT_NAME
    if entry.exists() and "F" in entry_flags(entry.read_text()):
        return
    if entry.exists():  # registered without F: the chroot could not find the interpreter
        entry.write_text("-1")
    try:
        (BINFMT_DIR / "register").write_text(binfmt_line())
    except OSError as err:
        raise Skip(f"cannot register the aarch64 binfmt handler: {err.strerror or err}") from err
    say(f"registered {BINFMT_NAME} in {BINFMT_DIR} (flags {entry_flags(entry.read_text())})")


def preflight() -> None:
    """Raise Skip with the one-line reason when this machine cannot emulate arm64."""
    if os.geteuid() != 0:
        raise Skip("needs root (mount, chroot, binfmt registration); run as root or in CI")
    if not BINFMT_DIR.exists():
        raise Skip(f"{BINFMT_DIR} does not exist: this kernel has no binfmt_misc")
    ensure_host_tools()
    register_binfmt()


# ---------------------------------------------------------------- the cached root

def apt_mirror(sources: list[Path] | None = None) -> str:
    """The Debian archive this machine's apt uses (deb822 or one-line format)."""
    paths = sources or [Path("/etc/apt/sources.list"),
                        *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in paths:
        text = path.read_text(errors="replace") if path.is_file() else ""
        for uri in re.findall(r"^\s*(?:URIs:|deb)\s+(?:\[[^\]]*\]\s+)?(\S+)", text, re.M):
            if re.search(r"/debian/?$", uri) and "security" not in uri:
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def is_built(root: Path) -> bool:
    """Built completely, with today's package list (an older root lacks python3-numpy)."""
    return build_info(root).get("packages") == ROOT_PACKAGES


def run_with_progress(cmd: list[str], what: str, timeout: float | None = None,
                      **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd`` (its stdout and stderr merged), print one progress line at least every
    PROGRESS_EVERY_S seconds (elapsed time and its latest output line), and return its exit
    code and its last output lines; never raises on a non-zero exit."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", **kwargs)
    tail: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            if line.strip():
                tail.append(line.rstrip())
                del tail[:-200]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while True:
        try:
            proc.wait(timeout=PROGRESS_EVERY_S)
            break
        except subprocess.TimeoutExpired:
            spent = time.monotonic() - started
            if timeout is not None and spent > timeout:
                proc.kill()
                proc.wait()
                break
            last = tail[-1][:100] if tail else "no output yet"
            say(f"{what}: {spent:.0f} s, {last}")
    reader.join(timeout=10)
    out = "\n".join(tail)
    if timeout is not None and time.monotonic() - started > timeout:
        raise subprocess.TimeoutExpired(cmd, timeout, output=out)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


def debootstrap(root: Path) -> float:
    """Build the root in ROOT.partial and rename it: an interrupted build is never used."""
    partial = root.with_name(root.name + ".partial")
    assert_unmounted(partial)
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    mirror = apt_mirror()
    say(f"debootstrap {SUITE} {ARCH} from {mirror} into {root} (a few minutes, once; a "
        f"progress line every {PROGRESS_EVERY_S} s)")
    started = time.monotonic()
    got = run_with_progress(["debootstrap", f"--arch={ARCH}", "--variant=minbase",
                             f"--include={ROOT_PACKAGES}", SUITE, str(partial), mirror],
                            "building the arm64 root")
    if got.returncode != 0:
        raise RuntimeError(f"debootstrap failed (exit {got.returncode}): "
                           f"{got.stdout.strip()[-1000:]}")
    spent = round(time.monotonic() - started, 1)
    stamp = {"suite": SUITE, "mirror": mirror, "packages": ROOT_PACKAGES, "debootstrap_s": spent,
             "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (partial / BUILT_STAMP).write_text(json.dumps(stamp) + "\n")
    assert_unmounted(root)
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    say(f"root built in {spent:.0f} s")
    return spent


def build_info(root: Path) -> dict:
    """What the stamp says about the cached root's build (suite, mirror, time it took)."""
    try:
        return json.loads((root / BUILT_STAMP).read_text())
    except (OSError, ValueError):
        return {}


# ---------------------------------------------------------------- mounts and chroot

def mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    with open("/proc/mounts") as f:
        points = [line.split()[1] for line in f]
    return [p for p in points if p.startswith(prefix)]


def assert_unmounted(path: Path) -> None:
    """Never delete a root while /dev or /proc is mounted in it (it would delete the host's)."""
    if path.exists() and mounts_under(path):
        raise RuntimeError(f"{path} still has mounts ({', '.join(mounts_under(path))}); "
                           f"unmount them first")


def fake_cpuinfo(cpu: str, count: int) -> str:
    """/proc/cpuinfo as the board with ``cpu`` writes it (the fields cpuinfo parses)."""
    _, variant, part, revision = CPUS[cpu]
    block = ("processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
             "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: {v}\n"
             "CPU part\t: {p}\nCPU revision\t: {r}\n\n")
    return "".join(block.format(i=i, v=variant, p=part, r=revision) for i in range(count))


@contextlib.contextmanager
def mounted(root: Path, binds: list[str], cpu: str = DEFAULT_CPU) -> Iterator[None]:
    """/proc (with the board's cpuinfo), /sys (read-only), /dev and read-only binds for the
    chroot; always undone."""
    done: list[Path] = []
    (root / CPUINFO_FILE).write_text(fake_cpuinfo(cpu, os.cpu_count() or 1))
    plan = [(["-t", "proc", "proc"], "proc"),
            (["--bind", "-o", "ro", str(root / CPUINFO_FILE)], "proc/cpuinfo"),
            (["-t", "sysfs", "-o", "ro", "sysfs"], "sys"), (["--bind", "/dev"], "dev")]
    plan += [(["--bind", "-o", "ro", path], path.lstrip("/")) for path in binds]
    try:
        for args, rel in plan:
            target = root / rel
            if not target.exists():
                target.mkdir(parents=True)
            run(["mount", *args, str(target)])
            done.append(target)
    except BaseException:
        _unmount(done)
        raise
    try:
        yield
    finally:
        _unmount(done)


def _unmount(points: list[Path]) -> None:
    for point in reversed(points):
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True)


def chroot_env(cpu: str = DEFAULT_CPU) -> dict[str, str]:
    env = {"PATH": CHROOT_PATH, "HOME": "/root", "LANG": "C.UTF-8",
           "OPENCV_LOG_LEVEL": "ERROR", "QEMU_CPU": cpu}
    env.update({k: v for k, v in os.environ.items() if PASS_ENV.match(k)})
    return env


def in_root(root: Path, cmd: list[str], cpu: str = DEFAULT_CPU,
            **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd`` inside the root on an emulated ``cpu``; never raises on a non-zero exit."""
    return subprocess.run(["chroot", str(root), *cmd], env=chroot_env(cpu), text=True, **kwargs)
