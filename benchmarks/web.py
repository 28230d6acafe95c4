"""The in-browser runner beside edge-run, on the same machine, model and real frames.

    python -m benchmarks.web --data DATA/kaggle-nerve/train --out benchmarks/results/web.json

For each of WASM 1 thread and WASM threaded, headless Chromium opens /app/ of edge-run's server
and runs the page's own per-frame work (grab -> preprocess -> inference -> postprocess ->
draw, nerveEdge.benchmark) back to back on in-memory frames. edge-run runs the same frames
from an image folder (--images --loop) with the same web model at 1 and at all threads.
Rounds alternate browser and edge-run so machine load hits both alike; the median round is
reported. Also: the parity of the page's masks against edge-run --save-masks on the frames.
Writes OUT (JSON, with the machine) and OUT with .md (a table). Needs chromium, chromedriver,
selenium and `make web-runtime`; no TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from benchmarks.browser import (
    benchmark_in_page,
    browser_missing,
    dice_agreement,
    segment_in_page,
    start_browser,
    wait_for,
    wait_ready,
    write_y4m,
)
from benchmarks.machine import describe_machine
from edge.fsutil import write_json_atomic
from edge.model.metadata import sha256_file
from edge.view.web.site import DEFAULT_MODEL

REPO = Path(__file__).resolve().parents[1]
FRAME_WH = (580, 420)  # the Kaggle scanner's frame size; the data's copies are 256x185
DEFAULT_FRAMES = 60  # distinct real frames, spread over all subjects
DEFAULT_COUNT = 300  # timed frames per run
DEFAULT_ROUNDS = 3
CAMERA_FPS = 30  # the fake camera's rate (a typical grabber)
CAMERA_SAMPLES, CAMERA_PERIOD_S = 10, 1.0  # stats() polled this often while the camera runs
NON_MODEL = ("grab", "preprocess", "postprocess", "draw")  # the page's stages besides inference
EDGE_NON_MODEL = ("capture", "preprocess", "postprocess", "render")


def pick_frames(data: Path, n: int) -> list[Path]:
    files = sorted(p for p in data.glob("*.png") if not p.stem.endswith("_mask"))
    if not files:
        raise SystemExit(f"--data {data}: no frames (expected kaggle-nerve/train)")
    return files[:: max(1, len(files) // n)][:n]


def edge_run(images: Path, threads: int, count: int, workdir: Path, masks: Path | None = None
             ) -> dict:
    """edge-run's --report summary (this checkout's code, the web model)."""
    report = workdir / f"edge-run-{threads}.json"
    cmd = [sys.executable, "-m", "edge.cli", "--images", str(images), "--headless", "--quiet",
           "--model", str(DEFAULT_MODEL), "--threads", str(threads), "--report", str(report)]
    cmd += ["--save-masks", str(masks)] if masks else ["--loop", "--max-frames", str(count)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(cmd, env=env, check=True, cwd=REPO)
    return json.loads(report.read_text())


def edge_row(summary: dict) -> dict:
    stages = {k: v["p50_ms"] for k, v in summary["stages"].items()}
    means = {k: v["mean_ms"] for k, v in summary["stages"].items()}
    return {"fps": summary["fps"], "stage_ms_p50": stages, "stage_ms_mean": means,
            "non_model_share": sum(means.get(k, 0.0) for k in EDGE_NON_MODEL) / means["total"],
            "backend": summary["backend"], "threads": summary["threads"]}


def browser_row(got: dict) -> dict:
    mean = got["stageMs"]
    return {"fps": got["fps"], "backend": got["backend"], "stage_ms_p50": got["stageMsMedian"],
            "stage_ms_mean": mean, "frames": got["frames"],
            "non_model_share": sum(mean[k] for k in NON_MODEL) / mean["total"]}


def median_round(rows: list[dict]) -> dict:
    """The round with the median FPS, plus every round's FPS."""
    ranked = sorted(rows, key=lambda r: r["fps"])
    return {**ranked[len(ranked) // 2], "fps_rounds": [round(r["fps"], 1) for r in rows]}


def parity(driver, files: list[Path], workdir: Path) -> dict:
    masks = workdir / "masks"
    edge_run(workdir / "native", 1, 0, workdir, masks=masks)
    scores = []
    for f in files:
        gray = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        ref = cv2.imread(str(masks / f"{f.stem}.png"), cv2.IMREAD_GRAYSCALE)
        scores.append(dice_agreement(segment_in_page(driver, gray)["mask"], ref))
    return {"frames": len(scores), "mean_dice_agreement": float(np.mean(scores)),
            "min_dice_agreement": float(np.min(scores)),
            "identical_frames": int(sum(s == 1.0 for s in scores))}


def camera_row(url: str, grays: list[np.ndarray], work: Path) -> dict:
    """The live camera path: Chromium's fake camera plays the frames at CAMERA_FPS; the page's
    stats() (last 30 frames) is sampled CAMERA_SAMPLES times and averaged."""
    import time

    clip = write_y4m(work / "camera.y4m", grays, fps=CAMERA_FPS)
    driver = start_browser(work / "profile-camera", (
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}"))
    try:
        driver.get(url)
        wait_ready(driver)
        driver.find_element("id", "camera").click()
        stats = "return nerveEdge.stats()"
        wait_for(driver, lambda d: d.execute_script(stats)["frames"] >= 60, "no camera frames")
        samples = []
        for _ in range(CAMERA_SAMPLES):
            time.sleep(CAMERA_PERIOD_S)
            samples.append(driver.execute_script(stats))
    finally:
        driver.quit()
    mean = {k: float(np.mean([s["stageMs"][k] for s in samples])) for k in samples[0]["stageMs"]}
    return {"fps": float(np.median([s["fps"] for s in samples])), "camera_fps": CAMERA_FPS,
            "backend": samples[0]["backend"], "stage_ms_mean": mean,
            "non_model_share": sum(mean[k] for k in NON_MODEL) / mean["total"]}


def run(args) -> dict:
    from edge.view.serve import ServeSink

    files = pick_frames(args.data, args.frames)
    work = Path(tempfile.mkdtemp(prefix="nerve-web-bench-"))
    (work / "frames").mkdir()
    (work / "native").mkdir()
    grays = []
    for f in files:  # scanner-size copies for the speed runs; the originals for parity
        gray = cv2.resize(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), FRAME_WH)
        cv2.imwrite(str(work / "frames" / f"{f.stem}.png"), gray)
        (work / "native" / f.name).symlink_to(f)
        grays.append(gray)
    cores = os.cpu_count() or 1
    sink = ServeSink.from_spec("127.0.0.1:0", log=None)
    driver = start_browser(work / "profile")
    rounds: dict[str, list[dict]] = {}
    try:
        base = f"http://127.0.0.1:{sink.port}/app/"
        for _ in range(args.rounds):
            for name, query in (("browser-wasm-1", "?backend=wasm"),
                                ("browser-wasm-threads", f"?backend=wasm-threads&threads={cores}")):
                driver.get(base + query)
                wait_ready(driver)
                rounds.setdefault(name, []).append(
                    browser_row(benchmark_in_page(driver, grays, args.count)))
            for threads in (1, cores):
                rounds.setdefault(f"edge-run-{threads}", []).append(
                    edge_row(edge_run(work / "frames", threads, args.count, work)))
        match = parity(driver, files, work)
        browser = driver.capabilities.get("browserVersion")
    finally:
        driver.quit()
    try:
        camera = camera_row(base, grays, work)
    finally:
        sink.close()
    results = {name: median_round(rows) for name, rows in rounds.items()}
    return {"machine": describe_machine(), "browser": f"Chromium {browser} (headless)",
            "litertjs": "@litertjs/core " + _litertjs_version(),
            "model": {"path": str(DEFAULT_MODEL.relative_to(REPO)),
                      "sha256": sha256_file(DEFAULT_MODEL)},
            "frames": {"count": len(files), "size_wh": list(FRAME_WH), "timed": args.count,
                       "rounds": args.rounds}, "results": results,
            "targets": targets(results, cores), "camera": camera, "parity": match}


def _litertjs_version() -> str:
    from edge.view.web.site import VENDOR_DIR

    return json.loads((VENDOR_DIR / "core" / "package.json").read_text())["version"]


def targets(results: dict, cores: int) -> dict:
    """Model throughput vs edge-run at the same threads (>= 1/3), non-model share (<= 1/4)."""
    out = {}
    for page, native in (("browser-wasm-1", "edge-run-1"),
                         ("browser-wasm-threads", f"edge-run-{cores}")):
        b, e = results[page], results[native]
        ratio = e["stage_ms_p50"]["inference"] / b["stage_ms_p50"]["inference"]
        out[page] = {"vs": native, "model_throughput_ratio": round(ratio, 3),
                     "model_throughput_ok": ratio >= 1 / 3,
                     "non_model_share": round(b["non_model_share"], 3),
                     "non_model_ok": b["non_model_share"] <= 0.25}
    return out


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [f"# In-browser runner vs edge-run ({res['browser']}, {res['litertjs']})", "",
             f"Machine: {m.get('cpu_model', '?')}, {m.get('logical_cores', '?')} logical cores, "
             f"{m['os']}. Model `{res['model']['path']}`. {res['frames']['count']} real frames "
             f"at {res['frames']['size_wh'][0]}x{res['frames']['size_wh'][1]}, "
             f"{res['frames']['timed']} timed frames per run, median of "
             f"{res['frames']['rounds']} alternating rounds.", "",
             "| run | backend | FPS (rounds) | grab/capture | pre | inference | post | draw/render"
             " | total | non-model share |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in res["results"].items():
        s = r["stage_ms_p50"]
        grab = s.get("grab", s.get("capture", 0.0))
        draw = s.get("draw", s.get("render", 0.0))
        rounds = ", ".join(map(str, r["fps_rounds"]))
        lines.append(f"| {name} | {r['backend']} | {r['fps']:.1f} ({rounds})"
                     f" | {grab:.2f} | {s['preprocess']:.2f} | {s['inference']:.2f} | "
                     f"{s['postprocess']:.2f} | {draw:.2f} | {s['total']:.2f} | "
                     f"{r['non_model_share']:.0%} |")
    lines += ["", "Stage times: p50 ms per frame. Non-model share: mean non-inference time / mean "
              "frame time.", "", "| page | vs | model throughput (edge-run inference / page "
              "inference) | target >= 0.33 | non-model share | target <= 0.25 |",
              "|---|---|---:|---|---:|---|"]
    for page, t in res["targets"].items():
        lines.append(f"| {page} | {t['vs']} | {t['model_throughput_ratio']:.2f} | "
                     f"{'met' if t['model_throughput_ok'] else 'NOT met'} | "
                     f"{t['non_model_share']:.0%} | {'met' if t['non_model_ok'] else 'NOT met'} |")
    c = res["camera"]
    lines += ["", f"Live camera path (Chromium's fake camera at {c['camera_fps']} FPS playing the "
              f"same frames, {c['backend']}): {c['fps']:.1f} FPS; mean ms: "
              + ", ".join(f"{k} {v:.2f}" for k, v in c["stage_ms_mean"].items())
              + f"; non-model share {c['non_model_share']:.0%} (a video frame costs more to "
              "grab than an in-memory bitmap)."]
    p = res["parity"]
    lines += ["", f"Parity (page masks vs `edge-run --images --save-masks`, same web model, "
              f"{p['frames']} real frames at their own 256x185): mean Dice agreement "
              f"{p['mean_dice_agreement']:.4f}, min {p['min_dice_agreement']:.4f}, "
              f"{p['identical_frames']} frames identical.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.web", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="kaggle-nerve/train folder")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "web.json")
    p.add_argument("--frames", type=int, default=DEFAULT_FRAMES)
    p.add_argument("--count", type=int, default=DEFAULT_COUNT)
    p.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    args = p.parse_args(argv)
    why = browser_missing()
    if why:
        print(f"benchmarks.web: {why}", file=sys.stderr)
        return 2
    res = run(args)
    write_json_atomic(args.out, res)
    args.out.with_suffix(".md").write_text(markdown(res), encoding="utf-8")
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
