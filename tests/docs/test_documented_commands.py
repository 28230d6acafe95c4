"""A documented command is a tested command (issue 24, item 1).

Every ``edge-run``, ``edge-train``, ``edge-convert``, ``edge-bench``, ``edge-deploy`` and
``make`` command (a board's ``sudo [-u USER]`` dropped) in a code block of README.md or
docs/*.md (tests/docs/doc_commands.py says how they are read) is either
run here, in one working folder, in the order a user follows the docs, or listed by its exact
text with the reason: NOT_HERE (hardware that is not here, ``make test`` itself) or ELSEWHERE
(another test runs it, same mapping, more assertions). A command in none of these fails the
first test, so a new documented command cannot be skipped without a word; an entry whose
command left the docs fails it too.

How a command is run (the mapping, tests/docs/doc_commands.py):
- placeholders -> stand-ins: ``clip.mp4``, ``scans/``, ``cine.dcm``, ``exports/``,
  ``kaggle-download/``, ``usgra-seg/``, ``/path/clinic`` are small real files made from the
  phantom (tests/docs/doc_workspace.py; DICOM written with pydicom as tests/dicom does); ``DATA``,
  ``DIR``, ``RUN``, ``model.keras``... are the data and run folders that earlier documented
  commands prepared and trained (docs/data.md, docs/train.md); ``runs/base16`` and
  ``runs/final/default`` are copies of docs/train.md's ``runs/unet``; ``model.tflite`` /
  ``model.onnx`` the shipped models; ``NERVE_MODEL.keras`` the shipped float nerve model;
- long work shrunk: ``--epochs N`` -> 1 with ``--max-steps-per-epoch 1 --progress 0``;
  ``edge-train cv --folds 3`` -> 2; edge-convert ``--prune-epochs 1 --latency-runs 3
  --calib-frames 8``, prune ``--epochs 1``; edge-bench compare ``--warmup 2 --runs 5 --repeats 1
  --max-frames 30 --in-process``; ``make run`` with ``RUN_FRAMES=200`` and
  ``-o .venv-edge/.installed`` (the suite's own venv, not rebuilt mid-test);
- a one-step model is below edge-convert's Dice floor: the conversions get
  ``--allow-low-dice`` (written, flagged), except those whose refusal the docs show (EXPECT);
- network: ``--serve`` listens on a free port of the documented address (8080 may be taken);
  a PACS (``10.0.0.9:4242:PACS``, ``https://pacs/...``) is a closed local port: the
  documented "PACS does not answer" path (files kept in the outbox, exit 0; ``--pacs-flush``
  then exits 1). Sending to a real PACS is tests/dicom's (Orthanc);
- a live source that never ends (the phantom with ``--serve`` and no ``--max-frames``) is
  stopped with SIGTERM once it serves: exit 130, as systemd stops it.
Each command's ``--out`` is removed first (the docs show alternatives writing the same
folder). ``edge-run`` runs from the device venv (``.venv-edge``: the ``[dicom]`` extra is
there), the other tools from this interpreter's venv, with this checkout's code (PYTHONPATH).
``make`` runs in the repository root. Commands identical to an earlier one run once. Two
commands run at a time (LANES), each after every earlier command whose files it reads or writes
(``--out``, ``--report``, ... and the paths it names), so the docs' order holds wherever it
matters. EXTRA adds flags to one command, with the reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import doc_commands as C  # noqa: E402
import doc_workspace as workspace  # noqa: E402

ROOT = C.ROOT
CAMERA = "no camera here (a USB grabber / V4L2 device); the camera class is tested with a " \
         "recorded video and a fake capture (tests/edge/test_sources.py)"
JETSON = "TensorRT / CUDA providers need a Jetson (NVIDIA GPU + onnxruntime-gpu); the " \
         "provider check is tested in tests/edge/test_backends.py"
# Documented commands that are not run here, by their exact text, with the reason.
NOT_HERE = {
    "make test": "the suite itself (this test runs inside it)",
    "NERVE_EDGE_DATA=$PWD/data make test": "the suite itself, on the real data",
    "edge-run --camera 0": CAMERA,
    "edge-run --camera /dev/video2 --roi 120,60,640,480": CAMERA,
    "edge-run --camera 0 --headless --serve 0.0.0.0:8080": CAMERA,
    "edge-run --camera 0 --headless --serve 8080": CAMERA,
    "edge-run --camera 0 --capture frames/": CAMERA + "; the same capture from a video runs "
        "here (docs/clinic.md) and in tests/label/test_capture.py",
    "edge-run --camera 0 --capture scans/": CAMERA + "; the same capture from a video runs "
        "here (docs/clinic.md) and in tests/label/test_capture.py",
    "/opt/nerve-edge/venv/bin/edge-run --camera 0 --headless --serve 0.0.0.0:8443 --threads 4":
        CAMERA,
    "/opt/nerve-edge/venv/bin/edge-run --picamera --headless --serve 0.0.0.0:8443 --threads 4":
        "no Raspberry Pi camera (picamera2 + libcamera); tested with a stand-in module "
        "(tests/edge/test_sources.py)",
    "edge-run --model model.onnx --onnx-providers "
    "TensorrtExecutionProvider,CUDAExecutionProvider": JETSON,
    "edge-run --model /opt/nerve-edge/src/edge/models/nerve_default.onnx --camera 0 "
    "--onnx-providers TensorrtExecutionProvider,CUDAExecutionProvider,CPUExecutionProvider":
        JETSON + "; and " + CAMERA,
    'TF_CONFIG={"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": '
    '"worker", "index": 0}} edge-train --data DATA --out runs/mw --strategy multiworker':
        "two machines (host1, host2); two local workers: tests/train/test_multiworker.py",
    'TF_CONFIG={... "task": {"type": "worker", "index": 1}} edge-train ...':
        "the second machine of the line above",
}
# Documented commands another test runs with the same mapping and more assertions.
FINETUNE = ("tests/train/test_readme_finetune.py (the README's fine-tune block as written, "
            "same mapping; asserts the Dice floor's refusal, then the files under "
            "--allow-low-dice, edge-deploy's refusal without --force, the install, then "
            "edge-run on models/current)")
ELSEWHERE = {
    "edge-train eval --model default --data /path/clinic --layout folder --nerve-class 1 "
    "--out runs/clinic-before": FINETUNE,
    "edge-train --data /path/clinic --layout folder --nerve-class 1 --init-weights default "
    "--input-size 208x208 --augment strong --epochs 30 --lr 1e-3 --batch 8 --dice-weight 0.5 "
    "--out runs/clinic": FINETUNE,
    "edge-train eval --model runs/clinic --out runs/clinic/eval": FINETUNE,
    "edge-convert runs/clinic --out runs/clinic/export": FINETUNE,
    "/opt/nerve-edge/venv/bin/edge-deploy install /tmp/clinic-int8.tflite":
        FINETUNE + "; and, on 100 real frames with the real recipe, "
        "tests/train/test_clinic_usgra100.py",
    "/opt/nerve-edge/venv/bin/edge-deploy rollback":
        "tests/train/test_clinic_install.py and tests/edge/test_edge_deploy.py (install, "
        "rollback, edge-run follows models/current); here the one install before it (the "
        "shipped model) leaves nothing to roll back to",
    "/opt/nerve-edge/venv/bin/edge-run --fetch-web-runtime":
        "make check-arm64 (this line in the board venv of its arm64 root, from the npm "
        "registry, as docs/deploy-pi.md installs) and tests/boards/test_fetch_web_runtime.py "
        "(a stand-in registry); here it would replace this checkout's own runtime",
}
LABEL_STUDIO = ("tests/label/test_clinic_loop.py and test_labelstudio.py (push and pull against a "
                "real Label Studio they start on loopback, tests/label/lsserver.py, with its URL "
                "and token; then the pulled folder trains)")
ELSEWHERE.update({
    "edge-train label push --frames chosen/ --model default --url http://localhost:8080 "
    "--token TOKEN": LABEL_STUDIO,
    "edge-train label pull --url http://localhost:8080 --token TOKEN --out data/clinic":
        LABEL_STUDIO,
    "edge-train label pull --url http://localhost:8080 --token TOKEN --out /path/clinic":
        LABEL_STUDIO,
})
# Flags added to one documented command beyond the mapping, by its exact text, with why.
EXTRA = {
    # the same chain as docs/convert.md's first command but from a bare .keras file: the
    # formats that command wrote (and edge-bench compare reads) are not made twice
    "edge-convert model.keras --data data/kaggle-nerve/train --out out/ --prune 0.5":
        ["--formats", "int8,onnx"],
}
# Documented exit codes other than 0, by exact text: (code, where the docs say so).
EXPECT = {
    "edge-convert validate runs/base16 m.tflite m.onnx [--json gate.json]":
        (1, "docs/convert.md: exit 1 past the gate (a one-step model is below --min-dice)"),
    "edge-run --pacs-flush --dicom-out out/ --pacs 10.0.0.9:4242:PACS":
        (1, "docs/dicom.md: exit 1 when files are still kept (the PACS is not there)"),
    "edge-run --source phantom --serve 0.0.0.0:8080":
        (130, "docs/edge.md: SIGTERM is a normal stop, exit 130 (the phantom never ends)"),
    "edge-run --source phantom --headless --serve 0.0.0.0:8443":
        (130, "docs/serve.md: stopped with SIGTERM once it prints its HTTPS URL"),
}
# Live commands, stopped with SIGTERM once this appears on their stdout (the page's URL).
LIVE = {"edge-run --source phantom --serve 0.0.0.0:8080": "https://",
        "edge-run --source phantom --headless --serve 0.0.0.0:8443": "https://"}
# Run folders the docs name that earlier documented commands did not make: copies of one.
RUN_COPIES = {"runs/base16": "runs/unet", "runs/final/default": "runs/unet"}
# Outputs: a later command that reads or writes one waits for the command that writes it.
WRITE_FLAGS = {"--out", "--results", "--report", "--record", "--save-masks", "--json",
               "--dicom-out", "--export-web", "--capture", "--state"}
COPYING = threading.Lock()
LANES = 2  # commands at a time (the CI machine's cores), in dependency order
STEP_TIMEOUT_S = 600
LIVE_TIMEOUT_S = 120
TAIL_CHARS = 3000


def planned() -> list[tuple[C.DocCommand, str]]:
    """Every collected command with what happens to it: 'run', 'same', or 'not here'."""
    seen: set[str] = set()
    plan = []
    for cmd in C.collect():
        if cmd.text in NOT_HERE:
            plan.append((cmd, "not here"))
        elif cmd.text in ELSEWHERE:
            plan.append((cmd, "elsewhere"))
        elif cmd.text in seen:
            plan.append((cmd, "same"))
        else:
            seen.add(cmd.text)
            plan.append((cmd, "run"))
    return plan


def test_every_documented_command_is_run_or_listed_with_its_reason():
    plan = planned()
    texts = {cmd.text for cmd, _ in plan}
    assert len(plan) >= 40, f"only {len(plan)} documented commands found: is the reader broken?"
    for key in ("make run", "edge-run --dicom cine.dcm --serve 8080",
                "edge-run --video clip.mp4 --realtime --serve 8080"):
        assert key in texts, key
    stale = sorted((set(NOT_HERE) | set(ELSEWHERE) | set(EXTRA) | set(EXPECT) | set(LIVE))
                   - texts)
    assert not stale, f"these table entries name no documented command any more: {stale}"
    problems = []
    for cmd, what in plan:
        if what != "run":
            continue
        argv = C.as_run(cmd, pacs_port=1)
        left = C.unmapped(argv)
        if left:
            problems.append(f"{cmd.where}: {cmd.text}\n    placeholders not mapped: {left} "
                            f"(add them to tests/docs/doc_commands.py PLACEHOLDERS, or the "
                            f"command to NOT_HERE with its reason)")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------ running
def _device_bin() -> Path:
    """The device venv's bin (edge-run with the [dicom] extra), else this interpreter's."""
    device = ROOT / ".venv-edge" / "bin"
    return device if (device / "edge-run").exists() else Path(sys.executable).parent


def _env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _executable(tool: str) -> str:
    if tool == "make":
        return "make"
    folder = _device_bin() if tool == "edge-run" else Path(sys.executable).parent
    return str(folder / tool)


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _touches(argv: list[str]) -> tuple[set[str], set[str]]:
    """(paths read, paths written) of a mapped command, relative to the working folder."""
    words = argv[1:]
    writes = {words[i + 1].rstrip("/") for i, w in enumerate(words[:-1]) if w in WRITE_FLAGS}
    reads = {w.rstrip("/") for w in words
             if not w.startswith("-") and ("/" in w or "." in w)} - writes
    for alias, source in RUN_COPIES.items():  # copied (once) by the first command that needs it
        if any(_overlap(p, alias) for p in reads | writes):
            reads.add(source)
    return reads, writes


def _after(earlier: list[str], later: list[str]) -> bool:
    """Must ``later`` wait for ``earlier``? (it reads what that writes, or writes what that
    reads or writes; make works on the repository (the venv, the web runtime edge-run
    serves), not on paths it names: it keeps its place among the edge-run commands)"""
    tools = {earlier[0], later[0]}
    if "make" in tools:
        return tools <= {"make", "edge-run"}
    (r1, w1), (r2, w2) = _touches(earlier), _touches(later)
    return any(_overlap(a, b) for a in w1 for b in r2 | w2) or \
        any(_overlap(a, b) for a in r1 for b in w2)


def _in_order(jobs: list, run_one) -> list:
    """run_one(job) for each job, LANES at a time, each after the earlier jobs it depends on
    (_after): the documented order wherever it matters. Results in the jobs' order."""
    needs = [{j for j in range(i) if _after(jobs[j][1], jobs[i][1])} for i in range(len(jobs))]
    results: dict[int, object] = {}
    running: dict = {}
    pending = list(range(len(jobs)))
    with ThreadPoolExecutor(LANES) as pool:
        while pending or running:
            for i in list(pending):
                if len(running) < LANES and needs[i] <= results.keys():
                    running[pool.submit(run_one, jobs[i])] = i
                    pending.remove(i)
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                results[running.pop(future)] = future.result()
    return [results[i] for i in range(len(jobs))]


def _prepare_outputs(argv: list[str], ws: Path) -> None:
    for alias, source in RUN_COPIES.items():
        with COPYING:
            if any(_overlap(w, alias) for w in argv) and (ws / source).is_dir() \
                    and not (ws / alias).exists():
                shutil.copytree(ws / source, ws / alias)
    out = C.out_path(argv)
    if out and argv[0] != "make":
        target = ws / out
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def _run_live(argv: list[str], cwd: Path, env: dict, marker: str) -> tuple[int, str]:
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen, deadline = [], time.monotonic() + LIVE_TIMEOUT_S
    try:
        for line in proc.stdout:
            seen.append(line)
            if marker in line or time.monotonic() > deadline:
                break
        time.sleep(1.0)  # let frames flow
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
        seen.append(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, "".join(seen)


def _argv(cmd: C.DocCommand, pacs_port: int) -> list[str]:
    argv = C.as_run(cmd, pacs_port) + EXTRA.get(cmd.text, [])
    if C.subcommand(argv) == "" and argv[0] == "edge-convert" and cmd.text not in EXPECT:
        argv.append("--allow-low-dice")  # a one-step model: written, flagged (see above)
    return argv


def _run(cmd: C.DocCommand, argv: list[str], ws: Path, env: dict) -> tuple[list[str], int, str,
                                                                               float]:
    t0 = time.monotonic()
    _prepare_outputs(argv, ws)
    full = [_executable(argv[0]), *argv[1:]]
    cwd = ROOT if argv[0] == "make" else ws
    if cmd.text in LIVE:
        code, output = _run_live(full, cwd, env, LIVE[cmd.text])
        return full, code, output, time.monotonic() - t0
    proc = subprocess.run(full, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=STEP_TIMEOUT_S, check=False)
    output = proc.stdout[-TAIL_CHARS:] + proc.stderr
    return full, proc.returncode, output, time.monotonic() - t0


@pytest.mark.slow
def test_every_documented_command_runs_as_written(tmp_path):
    pytest.importorskip("tensorflow")  # edge-train / edge-convert / edge-bench run here
    if not (ROOT / ".venv-edge" / "bin" / "edge-run").exists():
        pytest.skip("the device venv .venv-edge is missing (make venv-edge; make test-rest "
                    "and make test build it): the documented edge-run lines run there")
    ws = tmp_path / "work"
    ws.mkdir()
    env = _env()
    workspace.make(ws, str(_device_bin() / "python"), env, ROOT)
    pacs_port = _closed_port()
    plan = planned()
    jobs = [(cmd, _argv(cmd, pacs_port)) for cmd, what in plan if what == "run"]
    started = time.monotonic()
    results = dict(zip((cmd.where for cmd, _ in jobs),
                       _in_order(jobs, lambda job: _run(*job, ws, env)), strict=True))
    failures, lines = [], []
    for cmd, what in plan:
        if what != "run":
            why = {"not here": NOT_HERE, "elsewhere": ELSEWHERE}.get(what, {}).get(cmd.text,
                                                                                "run above")
            lines.append(f"{what:<9} {cmd.where}  {cmd.text}  -- {why}")
            continue
        want = EXPECT.get(cmd.text, (0, ""))[0]
        full, code, output, took = results[cmd.where]
        lines.append(f"exit {code:<4} {cmd.where}  {cmd.text}  ({took:.1f} s)")
        if code != want:
            failures.append(f"{cmd.where}: {cmd.text}\n  ran: {' '.join(full)}\n"
                            f"  exit {code}, expected {want}; output tail:\n"
                            f"{output[-TAIL_CHARS:]}")
    lines.append(f"total {time.monotonic() - started:.0f} s ({LANES} at a time)")
    print("\n".join(lines))
    assert not failures, "\n\n".join(failures)
