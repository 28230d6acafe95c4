"""`make check-arm64`: does the device package install as docs/deploy-pi.md says and give the
same masks on arm64?

Builds once (cached in ~/.cache/nerve-edge/arm64-bookworm) a Debian bookworm arm64 root, the
base of Raspberry Pi OS 64-bit, with apt's python3-numpy (1.24, what apt's picamera2 is built
against), run through qemu-user-static; installs this working tree there as the docs do (a
venv with --system-site-packages, a plain pip install of '.[onnx,pi]' from the aarch64 wheels,
then edge-run --fetch-web-runtime); runs edge-run in it with every shipped model on phantom
frames and, with a data folder, on real frames; runs the same on x86; compares, and writes one
JSON report. The steps live beside it: check_arm64_root (the emulated root),
check_arm64_install (the install as the docs say, and each side's facts), check_arm64_frames
(the frames compared), check_arm64_probe (runs on each side), check_arm64_compare (verdicts).

    python scripts/check_arm64.py [--report PATH] [--data DIR] [--rebuild]

Exit 0: passed (or skipped with one line where this machine cannot emulate arm64: not root,
no qemu, no binfmt_misc). Exit 1: an install failed, an exit code was wrong, the venv does not
import apt's numpy, or a model's masks differ (check_arm64_compare: identical inputs always;
identical masks for int8 and web models; for float models differing pixels only within 1e-5
of the threshold). Emulated speed is not a board's speed: durations here time the check,
never a board's FPS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_arm64_compare as cmp  # noqa: E402
import check_arm64_frames as staging  # noqa: E402
import check_arm64_install as install  # noqa: E402
import check_arm64_root as board  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path.home() / ".cache" / "nerve-edge" / "arm64-bookworm"
# Not a tracked file: benchmarks/results/arm64.json is the recorded result, rewritten only
# when asked (--report benchmarks/results/arm64.json).
DEFAULT_REPORT = Path.home() / ".cache" / "nerve-edge" / "arm64-report.json"
PHANTOM_FRAMES = 50  # the plain `edge-run --source phantom` run
PROBE_FRAMES = 5  # raw-output probe: TFLite's reference kernels are slow under emulation
PROBE = "scripts/check_arm64_probe.py"
RUN_TIMEOUT_S = 1800  # one emulated edge-run; far above what it needs, below "hung"
MODELS_DIR = staging.MODELS_DIR  # one definition, beside frames_folder that reads sidecars
SHIPPED = ("nerve_default_int8.tflite", "nerve_default.onnx")  # first; then every other model
MODEL_SUFFIXES = (".tflite", ".onnx")
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
    ap.add_argument("--report", type=Path, default=DEFAULT_REPORT,
                    help="JSON report path (default: %(default)s; the recorded result is "
                         "benchmarks/results/arm64.json)")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="the cached arm64 root")
    ap.add_argument("--data", type=Path, default=None,
                    help="data folder with kaggle-nerve/train (default: $NERVE_EDGE_DATA, "
                         "else ./data; phantom frames only where there is none)")
    ap.add_argument("--frames", type=int, default=staging.FRAME_COUNT,
                    help="frames per set to compare (default: %(default)s)")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the root from scratch")
    ap.add_argument("--cpu", choices=sorted(board.CPUS), default=board.DEFAULT_CPU,
                    help="the emulated board's CPU (default: %(default)s, a Raspberry Pi 4)")
    ap.add_argument("--x86-python", type=str, default=sys.executable,
                    help="the x86 Python with nerve-edge's dependencies (default: this one)")
    return ap.parse_args(argv)


def shipped_models(repo: Path) -> list[str]:
    """Every shipped model in edge/models (TFLite and ONNX; not the test fixtures), the int8
    TFLite and the ONNX model first."""
    found = sorted(p.name for p in (repo / MODELS_DIR).iterdir()
                   if p.suffix in MODEL_SUFFIXES and not p.name.startswith(FIXTURE_PREFIX))
    names = [*SHIPPED, *(n for n in found if n not in SHIPPED)]
    return [n for n in names if (repo / MODELS_DIR / n).is_file()]


def edge_run_args(side: Side, src: Path, model: str | None, frame_set: str = "") -> list[str]:
    """edge-run's flags for one run; paths as ``side`` sees them."""
    if model is None:
        return ["--source", "phantom", "--headless", "--max-frames", str(PHANTOM_FRAMES),
                "--quiet", "--report", str(side.work / "phantom.json")]
    out = side.work / side.name / frame_set / Path(model).stem
    return ["--images", str(side.work / staging.frames_folder(model, frame_set)), "--headless",
            "--quiet", "--model", str(src / MODELS_DIR / model), "--save-masks", str(out),
            "--report", str(out) + ".json"]


def run_edge(side: Side, run_name: str, cmd: list[str], runner) -> None:
    """Run one edge-run, record its exit code and duration, print one progress line."""
    started = time.monotonic()
    got = runner(cmd, f"{side.name} {run_name}")
    side.durations_s[run_name] = round(time.monotonic() - started, 1)
    side.exit_codes[run_name] = got.returncode
    board.say(f"{side.name:5} {run_name:28} exit {got.returncode} "
              f"({side.durations_s[run_name]} s)")
    if got.returncode != 0:
        print((got.stderr or got.stdout or "")[-2000:], file=sys.stderr)


def run_side(side: Side, src: Path, models: list[str], sets: list[str], runner) -> None:
    run_edge(side, "phantom", runner.edge_run(edge_run_args(side, src, None)), runner)
    for frame_set in sets:
        for model in models:
            run_edge(side, f"{frame_set} {model}",
                     runner.edge_run(edge_run_args(side, src, model, frame_set)), runner)


class ArmRunner:
    """edge-run inside the root (paths are the root's), on the emulated ``cpu``; a progress
    line every 30 s while an emulated step runs (output merged into stdout)."""

    def __init__(self, root: Path, cpu: str) -> None:
        self.root, self.cpu = root, cpu

    def edge_run(self, args: list[str]) -> list[str]:
        return [f"{install.VENV}/bin/edge-run", *args]

    def __call__(self, cmd: list[str], what: str = "emulated step") -> subprocess.CompletedProcess:
        return board.run_with_progress(["chroot", str(self.root), *cmd], what,
                                       timeout=RUN_TIMEOUT_S, env=board.chroot_env(self.cpu))


class X86Runner:
    """edge-run from this working tree with the given x86 Python."""

    def __init__(self, python: str) -> None:
        self.python = python

    def edge_run(self, args: list[str]) -> list[str]:
        return [self.python, "-m", "edge.cli", *args]

    def __call__(self, cmd: list[str], what: str = "") -> subprocess.CompletedProcess:  # noqa: ARG002
        env = {**os.environ, "PYTHONPATH": str(REPO), "OPENCV_LOG_LEVEL": "ERROR"}
        return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S)


def build_root(root: Path, rebuild: bool, timings: dict) -> None:
    """Build the root once (or again with --rebuild, or when its package list changed)."""
    if rebuild or not board.is_built(root):
        timings["debootstrap_s"] = round(board.debootstrap(root), 1)
    else:
        board.say(f"using the cached root {root}")


def install_tree(root: Path, timings: dict) -> None:
    """This working tree -> nerve-edge[onnx,pi] in the root, as docs/deploy-pi.md installs it
    (mounts must be up)."""
    install.copy_host_settings(root)
    install.copy_tree(REPO, root)
    board.say(f"pip install '.[{install.PIP_EXTRAS}]' into a --system-site-packages venv in the "
              f"root (aarch64 wheels; minutes on a cold cache)")
    started = time.monotonic()
    got = install.install_package(root)
    timings["pip_install_s"] = round(time.monotonic() - started, 1)
    if got.returncode != 0:
        raise RuntimeError(f"pip install in the arm64 root failed (exit {got.returncode}): "
                           f"{(got.stderr or got.stdout or '').strip()[-1500:]}")
    board.say(f"installed in {timings['pip_install_s']} s")


def pipeline_jobs(side: Side, src: Path, models: list[str], sets: list[str]) -> list[dict]:
    """The pipeline probe's jobs (one per frame set and model), paths as ``side`` sees them."""
    return [{"frames": str(side.work / staging.frames_folder(m, fs)),
             "model": str(src / MODELS_DIR / m),
             "out": str(side.work / "probe" / f"pipeline.{fs}.{m}.{side.name}.npz")}
            for fs in sets for m in models]


def pipeline_side(side: Side, python: str, src: Path, models: list[str], sets: list[str],
                  work_host: Path, runner) -> None:
    """One process per side runs every job through the installed edge (one start-up)."""
    jobs = work_host / "probe" / f"pipeline-jobs.{side.name}.json"
    jobs.write_text(json.dumps(pipeline_jobs(side, src, models, sets)))
    run_edge(side, "probe pipeline", [python, str(src / PROBE), "pipeline",
                                      str(side.work / "probe" / jobs.name)], runner)


def agreement(work_host: Path, models: list[str], sets: list[str], raw: dict) -> dict:
    """Per frame set and model: check_arm64_compare's entry, its verdict and one line."""
    result: dict = {}
    probe = work_host / "probe"
    for frame_set in sets:
        for model in models:
            stem = Path(model).stem
            npz = {side: probe / f"pipeline.{frame_set}.{model}.{side}.npz"
                   for side in ("x86", "arm64")}
            if not all(p.is_file() for p in npz.values()):
                entry = {"frames": 0, "passed": False,
                         "line": "the pipeline probe wrote no output (see its exit code)"}
            else:
                entry = cmp.compare_model(work_host / "x86" / frame_set / stem,
                                          work_host / "arm64" / frame_set / stem,
                                          npz["x86"], npz["arm64"])
                entry["passed"], entry["line"] = cmp.verdict(entry)
                if entry["bit_identical"] < entry["frames"]:
                    entry["why_not_identical"] = cmp.explain(model, raw)
            board.say(f"{'ok  ' if entry['passed'] else 'FAIL'} {frame_set} {model}: "
                      f"{entry['line']}")
            result.setdefault(frame_set, {})[model] = entry
    return result


def probe_inputs(work_host: Path, frames: str, models: list[str], python: str) -> None:
    """Model inputs made once on x86, so both machines' interpreters get identical tensors."""
    probe = work_host / "probe"
    for model in models:
        subprocess.run([python, str(REPO / PROBE), "inputs", str(work_host / frames),
                        str(REPO / MODELS_DIR / model), str(probe / f"{model}.in.npz"),
                        "--count", str(PROBE_FRAMES)], check=True, capture_output=True)


def probe_cmd(side: Side, python: str, src: Path, model: str) -> list[str]:
    probe = side.work / "probe"
    return [python, str(src / PROBE), "run", str(src / MODELS_DIR / model),
            str(probe / f"{model}.in.npz"), str(probe / f"{model}.{side.name}.npz")]


def probe_side(side: Side, python: str, src: Path, frames: str, models: list[str],
               runner) -> None:
    for model in models:
        run_edge(side, f"probe {model}", probe_cmd(side, python, src, model), runner)
    stages = [python, str(src / PROBE), "stages", str(side.work / frames),
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


def board_web_runtime(root: Path, arm: Side, runner) -> None:
    """As the docs: edge-run --fetch-web-runtime on the board, then the /app/ site exports."""
    fetch = [f"{install.VENV}/bin/edge-run", "--fetch-web-runtime"]
    run_edge(arm, "fetch-web-runtime", fetch, runner)
    site = arm.work / "web-site"
    run_edge(arm, "export-web", [f"{install.VENV}/bin/edge-run", "--export-web", str(site)],
             runner)


def failures(report: dict) -> list[str]:
    bad = [f"{side} {run}: exit {code}" for side in ("arm64", "x86")
           for run, code in report[side]["exit_codes"].items() if code != 0]
    for frame_set, models in report["agreement"].items():
        bad += [f"{frame_set} {m}: {a['line']}" for m, a in models.items() if not a["passed"]]
    numpy_facts = report["arm64"].get("venv_imports", {})
    if not numpy_facts.get("from_system") or numpy_facts.get("numpy_in_venv"):
        bad.append(f"the venv does not import apt's numpy from {install.SYSTEM_SITE} (pip "
                   f"installed its own?): {numpy_facts}")
    return bad


def check(args: argparse.Namespace) -> dict:
    """The whole check; returns the report (written by main)."""
    timings: dict = {}
    root = args.cache.expanduser().resolve()
    build_root(root, args.rebuild, timings)
    work_host = root / board.WORK.lstrip("/")
    shutil.rmtree(work_host, ignore_errors=True)
    sets, notes = staging.stage_frames(work_host, args)
    probe_frames = staging.KAGGLE_FRAMES if "real" in sets else staging.PHANTOM_SET
    models = shipped_models(REPO)
    arm = Side("arm64", Path(board.WORK))
    x86 = Side("x86", work_host)
    (work_host / "probe").mkdir()
    for side in ("arm64", "x86"):
        for frame_set in sets:
            (work_host / side / frame_set).mkdir(parents=True)
    arm_runner, x86_runner = ArmRunner(root, args.cpu), X86Runner(args.x86_python)
    arm_python = f"{install.VENV}/bin/python"
    with board.mounted(root, install.local_dirs_for_pip(), args.cpu):
        install_tree(root, timings)
        facts = install.root_facts(root)
        board_web_runtime(root, arm, arm_runner)
        run_side(arm, Path(install.SRC), models, sets, arm_runner)
        pipeline_side(arm, arm_python, Path(install.SRC), models, sets, work_host, arm_runner)
        probe_inputs(work_host, probe_frames, models, args.x86_python)
        probe_side(arm, arm_python, Path(install.SRC), probe_frames, models, arm_runner)
    run_side(x86, REPO, models, sets, x86_runner)
    pipeline_side(x86, args.x86_python, REPO, models, sets, work_host, x86_runner)
    probe_side(x86, args.x86_python, REPO, probe_frames, models, x86_runner)
    raw = kernel_outputs(work_host, models)
    report = {
        "what": "edge-run on an emulated Debian bookworm arm64 root (qemu-user), installed as "
                "docs/deploy-pi.md says, vs x86: same working tree, same frames; per frame set "
                "and model: identical model inputs, identical masks (int8 and web models), "
                "differing pixels and their distance to the threshold (float models)",
        "speed_note": "durations are emulated arm64 under qemu on a shared x86 host: they "
                      "time this check, not a board; never read them as board FPS",
        "arm64": {**facts, "emulated_cpu": args.cpu, "as_in": board.CPUS[args.cpu][0],
                  "exit_codes": arm.exit_codes, "durations_s": arm.durations_s},
        "x86": {**install.host_facts(args.x86_python), "exit_codes": x86.exit_codes,
                "durations_s": x86.durations_s},
        "frames": notes, "models": models,
        "criteria": {"int8_and_web": "identical inputs and identical masks on every frame",
                     "float": "identical inputs; every differing mask pixel's probability "
                              f"within {cmp.THRESHOLD_TOL:g} of the threshold (on either "
                              "machine)"},
        "agreement": agreement(work_host, models, sets, raw),
        "raw_outputs_identical_inputs": raw,
        "raw_outputs_note": f"{PROBE_FRAMES} frames of "
                            f"{notes.get('real', notes[staging.PHANTOM_SET])};"
                            " the same input tensors (made once on x86, INTER_AREA) fed to each "
                            "interpreter on both machines; TFLite three ways: AUTO (XNNPACK "
                            "delegate, what edge-run uses), BUILTIN_WITHOUT_DEFAULT_DELEGATES "
                            "(TFLite's optimized kernels), BUILTIN_REF (reference kernels); "
                            "max_abs_diff in output units (int8 steps when quantized)",
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
