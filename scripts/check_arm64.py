"""`make check-arm64`: does the device package install and give the same masks on arm64?

Builds once (cached in ~/.cache/nerve-edge/arm64-bookworm) a Debian bookworm arm64 root, the
base of Raspberry Pi OS 64-bit, run through qemu-user-static; pip-installs nerve-edge[onnx]
there from a copy of this working tree (aarch64 wheels from the registry); runs edge-run in
it on the phantom and on real frames with every shipped model; runs the same on x86; compares
the masks and writes one JSON report.

    python scripts/check_arm64.py [--report benchmarks/results/arm64.json] [--rebuild]

Exit 0: passed (or skipped with one line where this machine cannot emulate arm64: not root,
no qemu, no binfmt_misc). Exit 1: an install failed, an exit code was wrong, or a model's
mean Dice arm64 vs x86 is below 0.99. Emulated speed is not a board's speed: durations here
measure the check, never a board's FPS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_arm64_compare as cmp  # noqa: E402
import check_arm64_root as board  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path.home() / ".cache" / "nerve-edge" / "arm64-bookworm"
DEFAULT_REPORT = REPO / "benchmarks" / "results" / "arm64.json"
DEFAULT_DATA = REPO / "data"  # the layout of docs/data.md; $NERVE_EDGE_DATA overrides it
FRAME_COUNT = 30
PHANTOM_FRAMES = 50
PROBE_FRAMES = 5  # raw-output probe: TFLite's reference kernels are slow under emulation
PROBE = "scripts/check_arm64_probe.py"
RUN_TIMEOUT_S = 1800  # one emulated edge-run; far above what it needs, below "hung"
MODELS_DIR = "edge/models"
SHIPPED = ("nerve_default_int8.tflite", "nerve_default.onnx")  # first; then every other model
MODEL_SUFFIXES = (".tflite", ".onnx")
KAGGLE_FRAMES, USGRA_FRAMES = "frames", "frames-usgra"  # staged in the root's work folder
FIXTURE_PREFIX = "nerve_fixture"  # test fixtures, not shipped defaults
EXIT_PASS, EXIT_FAIL = 0, 1


@dataclass
class Side:
    """One machine's way of running edge-run: arm64 in the root, or x86 here."""

    name: str
    work: Path  # the check's work folder as this side sees it
    durations_s: dict = field(default_factory=dict)
    exit_codes: dict = field(default_factory=dict)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="check-arm64", description=__doc__.split("\n\n")[0])
    ap.add_argument("--report", type=Path, default=DEFAULT_REPORT, help="JSON report path")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="the cached arm64 root")
    ap.add_argument("--data", type=Path, default=None,
                    help="data folder with kaggle-nerve/train (default: $NERVE_EDGE_DATA, "
                         "else ./data; phantom frames where there is none)")
    ap.add_argument("--frames", type=int, default=FRAME_COUNT, help="real frames to compare")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the root from scratch")
    ap.add_argument("--cpu", choices=sorted(board.CPUS), default=board.DEFAULT_CPU,
                    help="the emulated board's CPU (default: %(default)s, a Raspberry Pi 4)")
    ap.add_argument("--x86-python", type=str, default=sys.executable,
                    help="the x86 Python with nerve-edge's dependencies (default: this one)")
    return ap.parse_args(argv)


def data_dir(args: argparse.Namespace) -> Path:
    if args.data is not None:
        return args.data
    return Path(os.environ.get("NERVE_EDGE_DATA", DEFAULT_DATA))


def pick_frames(train_dir: Path, count: int) -> list[Path]:
    """``count`` ultrasound frames (not masks), evenly spaced over the sorted names."""
    images = sorted(p for p in train_dir.glob("*.png") if not p.stem.endswith("_mask"))
    if len(images) < count:
        raise FileNotFoundError(f"{train_dir}: {len(images)} frames, need {count}")
    step = len(images) // count
    return images[::step][:count]


def shipped_models(repo: Path) -> list[str]:
    """Every shipped model in edge/models (TFLite and ONNX; not the test fixtures), the int8
    TFLite and the ONNX model first."""
    found = sorted(p.name for p in (repo / MODELS_DIR).iterdir()
                   if p.suffix in MODEL_SUFFIXES and not p.name.startswith(FIXTURE_PREFIX))
    names = [*SHIPPED, *(n for n in found if n not in SHIPPED)]
    return [n for n in names if (repo / MODELS_DIR / n).is_file()]


def edge_run_args(side: Side, src: Path, model: str | None) -> list[str]:
    """edge-run's flags for one run; paths as ``side`` sees them."""
    if model is None:
        return ["--source", "phantom", "--headless", "--max-frames", str(PHANTOM_FRAMES),
                "--quiet", "--report", str(side.work / "phantom.json")]
    out = side.work / side.name / Path(model).stem
    return ["--images", str(side.work / frames_folder(model)), "--headless", "--quiet",
            "--model", str(src / MODELS_DIR / model), "--save-masks", str(out),
            "--report", str(out) + ".json"]


def frames_folder(model: str) -> str:
    """The staged frames a model is compared on: those of the data it was trained on (a USGRA
    model on Kaggle frames outputs small spurious blobs, where one rounding flip weighs a lot)."""
    sidecar = REPO / MODELS_DIR / f"{Path(model).stem}.json"
    try:
        data = json.loads(sidecar.read_text())["extra"]["training_data"]["data_dir"]
    except (OSError, ValueError, KeyError, TypeError):
        data = ""
    return USGRA_FRAMES if "usgra" in str(data) else KAGGLE_FRAMES


def run_edge(side: Side, run_name: str, cmd: list[str], runner) -> None:
    """Run one edge-run, record its exit code and duration, print one progress line."""
    started = time.monotonic()
    got = runner(cmd)
    side.durations_s[run_name] = round(time.monotonic() - started, 1)
    side.exit_codes[run_name] = got.returncode
    board.say(f"{side.name:5} {run_name:28} exit {got.returncode} "
              f"({side.durations_s[run_name]} s)")
    if got.returncode != 0:
        print((got.stderr or "")[-2000:], file=sys.stderr)


def run_side(side: Side, src: Path, models: list[str], runner) -> None:
    run_edge(side, "phantom", runner.edge_run(edge_run_args(side, src, None)), runner)
    for model in models:
        run_edge(side, model, runner.edge_run(edge_run_args(side, src, model)), runner)


class ArmRunner:
    """edge-run inside the root (paths are the root's), on the emulated ``cpu``."""

    def __init__(self, root: Path, cpu: str) -> None:
        self.root, self.cpu = root, cpu

    def edge_run(self, args: list[str]) -> list[str]:
        return [f"{board.VENV}/bin/edge-run", *args]

    def __call__(self, cmd: list[str]) -> subprocess.CompletedProcess:
        return board.in_root(self.root, cmd, cpu=self.cpu, capture_output=True,
                             timeout=RUN_TIMEOUT_S)


class X86Runner:
    """edge-run from this working tree with the given x86 Python."""

    def __init__(self, python: str) -> None:
        self.python = python

    def edge_run(self, args: list[str]) -> list[str]:
        return [self.python, "-m", "edge.cli", *args]

    def __call__(self, cmd: list[str]) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO), "OPENCV_LOG_LEVEL": "ERROR"}
        return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S)


def build_root(root: Path, rebuild: bool, timings: dict) -> None:
    """Build the root once (or again with --rebuild)."""
    if rebuild or not board.is_built(root):
        timings["debootstrap_s"] = round(board.debootstrap(root), 1)
    else:
        board.say(f"using the cached root {root}")


def install_tree(root: Path, timings: dict) -> None:
    """This working tree -> nerve-edge[onnx] in the root's venv (mounts must be up)."""
    board.copy_host_settings(root)
    board.copy_tree(REPO, root)
    board.say("pip install '.[onnx]' in the root (aarch64 wheels; minutes on a cold cache)")
    started = time.monotonic()
    got = board.install_package(root)
    timings["pip_install_s"] = round(time.monotonic() - started, 1)
    if got.returncode != 0:
        raise RuntimeError(f"pip install in the arm64 root failed (exit {got.returncode}): "
                           f"{(got.stderr or got.stdout or '').strip()[-1500:]}")
    board.say(f"installed in {timings['pip_install_s']} s")


def stage_frames(work_host: Path, args: argparse.Namespace) -> str:
    """Copy real frames into the root's work folder (both sides read that copy): Kaggle frames,
    and USGRA images for the models trained on them; phantom frames where no data is at hand,
    said so in the report."""
    kaggle, usgra = work_host / KAGGLE_FRAMES, work_host / USGRA_FRAMES
    kaggle.mkdir(parents=True)
    train = data_dir(args) / "kaggle-nerve" / "train"
    if not train.is_dir():
        board.say(f"no real frames at {train} (set NERVE_EDGE_DATA, see docs/data.md): "
                  f"comparing on {args.frames} phantom frames")
        write_phantom_frames(kaggle, args.frames)
        shutil.copytree(kaggle, usgra)
        return f"{args.frames} phantom frames (no real data at {train})"
    for path in pick_frames(train, args.frames):
        shutil.copy2(path, kaggle / path.name)
    note = f"{args.frames} real frames of kaggle-nerve/train, evenly spaced by name"
    images = data_dir(args) / "usgra-seg" / "images"
    if images.is_dir():
        usgra.mkdir()
        for path in pick_frames(images, args.frames):
            shutil.copy2(path, usgra / path.name)
        return note + f"; {args.frames} of usgra-seg/images for the models trained on them"
    shutil.copytree(kaggle, usgra)
    return note + " (no usgra-seg/images: the USGRA models are compared on them too)"


def write_phantom_frames(folder: Path, count: int) -> None:
    import cv2

    sys.path.insert(0, str(REPO))
    try:
        from edge.phantom import PhantomSource
    except ImportError:
        from edge.sources import PhantomSource
    source = PhantomSource(seed=0)
    for i in range(count):
        cv2.imwrite(str(folder / f"phantom_{i:03d}.png"), source.read().image)
    source.close()


def root_facts(root: Path) -> dict:
    """What runs inside the root: its machine, Python and installed wheels."""
    def ask(cmd: list[str]) -> str:
        got = board.in_root(root, cmd, capture_output=True)
        return (got.stdout or "").strip()

    versions = board.pip_versions(root)
    keys = ("nerve-edge", "ai-edge-litert", "numpy", "opencv-python-headless", "onnxruntime")
    return {
        "machine": ask(["uname", "-m"]),
        "os": ask(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": ask([f"{board.VENV}/bin/python", "-c",
                       "import platform; print(platform.python_version())"]),
        "wheels": {k: versions.get(k) for k in keys},
        "all_packages": versions,
        "venv_size_mb": board.dir_size_mb(root / board.VENV.lstrip("/")),
        "emulator": subprocess.run(["qemu-aarch64-static", "--version"], capture_output=True,
                                   text=True).stdout.splitlines()[0],
    }


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


def agreement(work_host: Path, models: list[str], raw: dict) -> dict:
    result = {}
    for model in models:
        stem = Path(model).stem
        agree = cmp.compare_dirs(work_host / "x86" / stem, work_host / "arm64" / stem)
        passed, line = cmp.verdict(agree)
        agree["passed"] = passed
        if agree["mean_dice"] is not None and agree["mean_dice"] < 1.0:
            agree["why_not_identical"] = cmp.explain(model, raw)
        board.say(f"agreement {model}: {line}")
        result[model] = agree
    return result


def probe_inputs(work_host: Path, models: list[str], python: str) -> None:
    """Model inputs made once on x86, so both machines' interpreters get identical tensors."""
    probe = work_host / "probe"
    probe.mkdir()
    for model in models:
        subprocess.run([python, str(REPO / PROBE), "inputs", str(work_host / "frames"),
                        str(REPO / MODELS_DIR / model), str(probe / f"{model}.in.npz"),
                        "--count", str(PROBE_FRAMES)], check=True, capture_output=True)


def probe_cmd(side: Side, python: str, src: Path, model: str) -> list[str]:
    probe = side.work / "probe"
    return [python, str(src / PROBE), "run", str(src / MODELS_DIR / model),
            str(probe / f"{model}.in.npz"), str(probe / f"{model}.{side.name}.npz")]


def probe_side(side: Side, python: str, src: Path, models: list[str], runner) -> None:
    for model in models:
        run_edge(side, f"probe {model}", probe_cmd(side, python, src, model), runner)
    stages = [python, str(src / PROBE), "stages", str(side.work / "frames"),
              str(src / MODELS_DIR / models[0]),
              str(side.work / "probe" / f"opencv.{side.name}.npz"), "--count", str(PROBE_FRAMES)]
    run_edge(side, "probe opencv stages", stages, runner)


def kernel_outputs(work_host: Path, models: list[str]) -> dict:
    """Per model and kernel set: raw outputs arm64 vs x86 on identical inputs."""
    probe, result = work_host / "probe", {}
    for model in [*models, "opencv"]:
        x86, arm = probe / f"{model}.x86.npz", probe / f"{model}.arm64.npz"
        if x86.is_file() and arm.is_file():
            result[model] = cmp.compare_outputs(x86, arm)
            for kernels, entry in result[model].items():
                board.say(f"raw outputs {model} {kernels}: {entry['bit_identical']}/"
                          f"{entry['outputs']} bit-identical, max gap {entry['max_abs_diff']}")
    return result


def failures(report: dict) -> list[str]:
    bad = [f"{side} {run}: exit {code}" for side in ("arm64", "x86")
           for run, code in report[side]["exit_codes"].items() if code != 0]
    bad += [f"{m}: mean Dice {a['mean_dice']}" for m, a in report["agreement"].items()
            if not a["passed"]]
    return bad


def check(args: argparse.Namespace) -> dict:
    """The whole check; returns the report (written by main)."""
    timings: dict = {}
    root = args.cache.expanduser().resolve()
    build_root(root, args.rebuild, timings)
    work_host = root / board.WORK.lstrip("/")
    shutil.rmtree(work_host, ignore_errors=True)
    frames_note = stage_frames(work_host, args)
    models = shipped_models(REPO)
    arm = Side("arm64", Path(board.WORK))
    x86 = Side("x86", work_host)
    for side in ("arm64", "x86"):
        (work_host / side).mkdir()
    arm_runner = ArmRunner(root, args.cpu)
    with board.mounted(root, board.local_dirs_for_pip(), args.cpu):
        install_tree(root, timings)
        facts = root_facts(root)
        run_side(arm, Path(board.SRC), models, arm_runner)
        probe_inputs(work_host, models, args.x86_python)
        probe_side(arm, f"{board.VENV}/bin/python", Path(board.SRC), models, arm_runner)
    run_side(x86, REPO, models, X86Runner(args.x86_python))
    probe_side(x86, args.x86_python, REPO, models, X86Runner(args.x86_python))
    raw = kernel_outputs(work_host, models)
    report = {
        "what": "edge-run on an emulated Debian bookworm arm64 root (qemu-user) vs x86, same "
                "working tree, same frames: masks compared by Dice",
        "speed_note": "durations are emulated arm64 under qemu on a shared x86 host: they "
                      "time this check, not a board; never read them as board FPS",
        "arm64": {**facts, "emulated_cpu": args.cpu, "as_in": board.CPUS[args.cpu][0],
                  "exit_codes": arm.exit_codes, "durations_s": arm.durations_s},
        "x86": {**host_facts(args.x86_python), "exit_codes": x86.exit_codes,
                "durations_s": x86.durations_s},
        "frames": frames_note, "models": models,
        "agreement_min_mean_dice": cmp.AGREEMENT_MIN_DICE,
        "agreement": agreement(work_host, models, raw),
        "raw_outputs_identical_inputs": raw,
        "raw_outputs_note": f"{PROBE_FRAMES} frames; the same input tensors (made once on x86) "
                            "fed to each interpreter on both machines; TFLite three ways: AUTO "
                            "(XNNPACK delegate, what edge-run uses), BUILTIN_WITHOUT_DEFAULT_"
                            "DELEGATES (TFLite's optimized kernels), BUILTIN_REF (reference "
                            "kernels); max_abs_diff in output units (int8 steps when quantized)",
        "timings_s": timings,
        "root_build": board.build_info(root),
    }
    shutil.rmtree(work_host, ignore_errors=True)  # frames cut from the data never stay
    return report


def _exit_on_sigterm(signum, frame) -> None:  # noqa: ARG001
    raise SystemExit(EXIT_FAIL)  # unwinds through the finally that unmounts /proc and /dev


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    started = time.monotonic()
    try:
        board.preflight()
    except board.Skip as reason:
        board.say(f"skipped: {reason}")
        return EXIT_PASS
    try:
        report = check(args)
    except (RuntimeError, subprocess.SubprocessError, OSError) as err:
        print(f"check-arm64: FAILED: {err}", file=sys.stderr)
        return EXIT_FAIL
    report["timings_s"]["total_s"] = round(time.monotonic() - started, 1)
    write_report(args.report, report)
    bad = failures(report)
    for line in bad:
        print(f"check-arm64: FAILED: {line}", file=sys.stderr)
    board.say(f"{'FAILED' if bad else 'passed'} in {report['timings_s']['total_s']} s; "
              f"report {args.report}")
    return EXIT_FAIL if bad else EXIT_PASS


def write_report(path: Path, report: dict) -> None:
    sys.path.insert(0, str(REPO))
    from edge.fsutil import write_json_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, report)


if __name__ == "__main__":
    sys.exit(main())
