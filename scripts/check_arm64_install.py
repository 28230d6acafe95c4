"""The device package in the emulated board for `make check-arm64`, installed as
docs/deploy-pi.md says (this machine's pip settings, a copy of the working tree, a venv with
--system-site-packages, a plain pip install of '.[onnx,pi]' from the aarch64 wheels), and the
facts the report gives about what each side runs (its machine, Python and wheels).

Standard library only; the root itself (build, mounts, chroot) is check_arm64_root's.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from check_arm64_root import chroot_env, in_root, run_with_progress

SYSTEM_SITE = "/usr/lib/python3/dist-packages"  # where apt's Python packages live, in the root
PIP_EXTRAS = "onnx,pi"  # docs/deploy-pi.md: pip install '/opt/nerve-edge/src[onnx,pi]'
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
VENV = "/opt/nerve-edge-venv"  # inside the root
SRC = "/opt/nerve-edge-src"  # the copy of the working tree, inside the root
PIP_INSTALL_TIMEOUT_S = 3600  # emulated pip on a loaded 2-core machine: be patient


def copy_host_settings(root: Path) -> None:
    """This machine's CA bundle and pip settings, so pip in the root reaches the same registry
    the same way (a proxy's CA, a mirror, constraints)."""
    shutil.copy2(HOST_CA_BUNDLE, root / HOST_CA_BUNDLE.relative_to("/"))
    lines = ["[global]"]
    for key, value in pip_global_settings().items():
        for path in local_paths(value):
            if Path(path).is_file():
                target = root / path.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
        lines.append(f"{key} = {value}")
    (root / "etc/pip.conf").write_text("\n".join(lines) + "\n")


def pip_global_settings() -> dict[str, str]:
    """``global.*`` items of ``pip config list`` on this machine (env ones pass as env)."""
    got = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                         text=True)
    settings = {}
    for line in got.stdout.splitlines():
        match = re.match(r"^global\.([\w-]+)='(.*)'$", line.strip())
        if match:
            settings[match.group(1)] = match.group(2)
    return settings


def local_paths(value: str) -> list[str]:
    """Absolute local paths in a pip setting (plain or file:// URLs)."""
    paths = []
    for item in value.split():
        item = item[len("file://"):] if item.startswith("file://") else item
        if item.startswith("/"):
            paths.append(item)
    return paths


def local_dirs_for_pip() -> list[str]:
    """Local index/find-links folders named by pip settings: bind-mounted read-only. For an
    index (".../simple") its parent, where the pages' relative links to the files point."""
    values = list(pip_global_settings().values())
    values += [v for k, v in os.environ.items() if k.startswith("PIP_")]
    dirs = {p for v in values for p in local_paths(v) if Path(p).is_dir()}
    dirs = {str(Path(p).parent) if Path(p).name == "simple" else p for p in dirs}
    return sorted(d for d in dirs if not any(d.startswith(o + "/") for o in dirs))


def copy_tree(repo: Path, root: Path) -> None:
    """The working tree as git sees it (tracked + untracked, not ignored) -> SRC in the root."""
    dest = root / SRC.lstrip("/")
    shutil.rmtree(dest, ignore_errors=True)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=repo,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        source = repo / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)


def venv_has_system_site(root: Path) -> bool:
    cfg = root / VENV.lstrip("/") / "pyvenv.cfg"
    text = cfg.read_text() if cfg.is_file() else ""
    return re.search(r"^include-system-site-packages\s*=\s*true", text, re.M) is not None


def install_package(root: Path) -> subprocess.CompletedProcess:
    """As docs/deploy-pi.md: a venv made with ``--system-site-packages`` (so apt's numpy 1.24,
    and on a Pi apt's picamera2, stay visible) and a plain (non-editable) ``pip install
    'SRC[onnx,pi]'``. A local folder is always rebuilt and reinstalled; the dependencies are
    reused once installed (their wheels stay in the root's pip cache)."""
    if not venv_has_system_site(root):
        shutil.rmtree(root / VENV.lstrip("/"), ignore_errors=True)
        got = in_root(root, ["python3", "-m", "venv", "--system-site-packages", VENV],
                      capture_output=True)
        if got.returncode != 0:
            return got
    return run_with_progress(
        ["chroot", str(root), f"{VENV}/bin/pip", "install", "--progress-bar", "off",
         f"{SRC}[{PIP_EXTRAS}]"], "pip install in the arm64 root",
        timeout=PIP_INSTALL_TIMEOUT_S, env=chroot_env())


def venv_numpy(root: Path) -> dict:
    """Which numpy and OpenCV the venv imports, from where, and whether pip put a numpy of its
    own into the venv (it must not: it would shadow apt's, which picamera2 is built against)."""
    code = ("import json, numpy, cv2; print(json.dumps({'numpy': numpy.__version__, "
            "'numpy_file': numpy.__file__, 'opencv': cv2.__version__}))")
    got = in_root(root, [f"{VENV}/bin/python", "-c", code], capture_output=True)
    try:
        facts = json.loads(got.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": (got.stderr or got.stdout or "").strip()[-500:]}
    site = root / VENV.lstrip("/") / "lib"
    facts["numpy_in_venv"] = sorted(p.name for p in site.glob("python3*/site-packages/numpy*"))
    facts["from_system"] = facts["numpy_file"].startswith(SYSTEM_SITE + "/")
    return facts


def pip_versions(root: Path) -> dict[str, str]:
    got = in_root(root, [f"{VENV}/bin/pip", "list", "--format", "json"], capture_output=True)
    if got.returncode != 0:
        return {}
    return {p["name"].lower(): p["version"] for p in json.loads(got.stdout)}


def dir_size_mb(path: Path) -> float:
    total = sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return round(total / 1e6, 1)


# ---------------------------------------------------------------- facts for the report

def root_facts(root: Path) -> dict:
    """What runs inside the root: its machine, Python, installed wheels, and which numpy the
    venv imports (apt's, from the system site, as on a Pi with apt's picamera2)."""
    def ask(cmd: list[str]) -> str:
        got = in_root(root, cmd, capture_output=True)
        return (got.stdout or "").strip()

    versions = pip_versions(root)
    keys = ("nerve-edge", "ai-edge-litert", "numpy", "opencv-python-headless", "onnxruntime")
    return {
        "machine": ask(["uname", "-m"]),
        "os": ask(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": ask([f"{VENV}/bin/python", "-c",
                       "import platform; print(platform.python_version())"]),
        "install": f"python3 -m venv --system-site-packages {VENV}; "
                   f"{VENV}/bin/pip install '{SRC}[{PIP_EXTRAS}]'; "
                   f"{VENV}/bin/edge-run --fetch-web-runtime (docs/deploy-pi.md)",
        "venv_imports": venv_numpy(root),
        "wheels": {k: versions.get(k) for k in keys},
        "all_packages": versions,
        "venv_size_mb": dir_size_mb(root / VENV.lstrip("/")),
        "emulator": subprocess.run(["qemu-aarch64-static", "--version"], capture_output=True,
                                   text=True).stdout.splitlines()[0],
        "untested": UNTESTED,
    }


UNTESTED = ("picamera2 and libcamera: Debian has no python3-picamera2 package, so apt's "
            "python3-numpy 1.24 (what Raspberry Pi OS's picamera2 and simplejpeg are built "
            "against) stands in for it: the check proves the venv imports that numpy and runs "
            "every model with it, not that picamera2 imports or captures; also untested: a real "
            "board's kernel, camera drivers and speed")


def host_facts(python: str) -> dict:
    got = subprocess.run([python, "-c", "import platform, numpy, cv2, onnxruntime, importlib."
                          "metadata as m; print(platform.python_version(), numpy.__version__, "
                          "cv2.__version__, onnxruntime.__version__, m.version('ai-edge-litert'))"],
                         capture_output=True, text=True)
    parts = (got.stdout.split() + [None] * 5)[:5]
    names = ("numpy", "opencv", "onnxruntime", "ai-edge-litert")
    return {"machine": platform.machine(), "cpu": cpu_model(), "python": parts[0],
            "wheels": dict(zip(names, parts[1:], strict=True))}


def cpu_model() -> str | None:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return None
