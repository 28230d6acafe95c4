"""edge-bench soak: RSS slope and FPS blocks, on stand-in children that grow or stay flat, and
on a short real edge-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.soak import (
    SoakConfig,
    build_edge_run_command,
    edge_root,
    fit_slope,
    fps_blocks,
    growth_per_frame,
    run_soak,
)
from benchmarks.soak_child import parse_status, poll_urls, read_rss_bytes

GROW_BYTES_PER_STEP = 512 * 1024  # the growing child keeps this much more every step
STEP_S = 0.1  # -> 5 MB/s, 18 000 MB/h
GROWING_MIN_MB_PER_H = 5_000  # well under the child's rate, far above any noise
FLAT_MAX_MB_PER_H = 100  # a sleeping interpreter; a leak of 240 B/frame at 30 FPS is 26 MB/h
SHORT = {"minutes": 0.1, "sample_s": 0.25, "block_s": 2.0, "warmup_s": 1.0}  # 6 s runs

CHILD = textwrap.dedent("""\
    import sys, time
    grow = sys.argv[1] == "grow"
    keep, frame = [], 0
    while True:
        if grow:
            keep.append(b"x" * {grow_bytes})  # filled, so really resident
        frame += 3
        print(f"edge-run: frame {{frame}}, 30.0 FPS, inference 1.0 ms, nerve no",
              file=sys.stderr, flush=True)
        time.sleep({step_s})
""").format(grow_bytes=GROW_BYTES_PER_STEP, step_s=STEP_S)


def quiet(_line: str) -> None:
    pass


@pytest.fixture
def child(tmp_path: Path) -> Path:
    path = tmp_path / "child.py"
    path.write_text(CHILD)
    return path


def test_parse_status_reads_edge_runs_line():
    assert parse_status("edge-run: frame 1359, 772.4 FPS, inference 1.1 ms, nerve no") == (
        1359, 772.4)
    assert parse_status("edge-run: stopped: max frames") is None


def test_fit_slope_is_least_squares():
    assert fit_slope([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0]) == pytest.approx(2.0)
    assert fit_slope([0.0, 1.0, 2.0], [1.0, 0.0, 2.0]) == pytest.approx(0.5)
    assert fit_slope([1.0], [5.0]) is None


def test_fps_blocks_count_frames_across_block_edges():
    status = [(1.0, 10, 9.0), (3.0, 30, 11.0), (5.0, 50, 10.0), (7.0, 70, 10.0)]
    blocks = fps_blocks(status, block_s=4.0)
    assert [b["frames"] for b in blocks] == [20, 40]  # block 1 counts from the line at 3 s
    assert blocks[0]["fps"] == pytest.approx(10.0) and blocks[1]["fps"] == pytest.approx(10.0)
    assert blocks[0]["reported_fps_mean"] == pytest.approx(10.0)


def test_growth_per_frame_uses_the_fps_after_the_warm_up():
    blocks = [{"start_s": 0.0, "frames": 10, "fps": 1.0},  # warm-up: left out
              {"start_s": 60.0, "frames": 3600, "fps": 60.0},
              {"start_s": 120.0, "frames": 1800, "fps": 30.0}]
    got = growth_per_frame(36.0, blocks, warmup_s=60.0)  # 36 MB/h = 10 000 B/s
    assert got["fps_after_warmup"] == pytest.approx(45.0)  # 5400 frames in 120 s
    assert got["bytes_per_frame"] == pytest.approx(10_000 / 45.0, rel=1e-3)
    assert growth_per_frame(None, blocks, 60.0)["bytes_per_frame"] is None


def test_read_rss_of_this_process_and_of_a_gone_one():
    assert read_rss_bytes(os.getpid()) > 1e6
    assert read_rss_bytes(2**22 + 12345) is None  # above any pid_max: never a process


def test_growing_child_is_detected_as_growing(child: Path):
    cfg = SoakConfig(command=(sys.executable, str(child), "grow"), **SHORT)
    doc = run_soak(cfg, log=quiet)
    rss = doc["rss"]
    assert rss["slope_mb_per_h"] > GROWING_MIN_MB_PER_H
    assert rss["end_mb"] > rss["start_mb"] and doc["flat"] is False
    # 512 kB per 3 "frames" of the stand-in child
    assert rss["bytes_per_frame"] == pytest.approx(GROW_BYTES_PER_STEP / 3, rel=0.5)


def test_flat_child_is_flat_and_the_document_is_complete(child: Path):
    cfg = SoakConfig(command=(sys.executable, str(child), "flat"), **SHORT)
    doc = run_soak(cfg, log=quiet)
    rss = doc["rss"]
    assert abs(rss["slope_mb_per_h"]) < FLAT_MAX_MB_PER_H
    assert doc["kind"] == "soak" and doc["stopped_by"] == "SIGINT"
    assert {"cpu_model", "runtimes"} <= set(doc["machine"])
    assert {"start_mb", "after_warmup_mb", "end_mb", "max_mb", "slope_samples",
            "series_s_mb"} <= set(rss)
    assert rss["slope_samples"] >= 10
    assert doc["frames"] > 0 and len(doc["fps_blocks"]) >= 2
    assert all(b["reported_fps_mean"] == pytest.approx(30.0) for b in doc["fps_blocks"])


def test_child_stops_normally_even_when_sigint_was_ignored(child: Path):
    # `edge-bench soak ... &` from a script starts with SIGINT ignored; the child must still
    # get SIGINT as a normal stop (without the fix it waits STOP_GRACE_S, then gets SIGTERM).
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        doc = run_soak(SoakConfig(command=(sys.executable, str(child), "flat"), **SHORT),
                       log=quiet)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert doc["stopped_by"] == "SIGINT"


def test_cli_soaks_a_real_edge_run(tmp_path: Path):
    out = tmp_path / "soak.json"
    code = main(["soak", "--minutes", "0.2", "--sample-s", "0.5", "--block-s", "3",
                 "--source", "phantom", "--threads", "1", "--out", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["exit_code"] == 130 and doc["stopped_by"] == "SIGINT"  # edge-run: interrupted
    assert "--loop" in doc["config"]["command"] and "--headless" in doc["config"]["command"]
    assert doc["frames"] > 0 and any((b["fps"] or 0) > 0 for b in doc["fps_blocks"])
    summary = doc["edge_run_summary"]
    assert summary["stop_reason"] == "interrupted (Ctrl-C)" and summary["frames"] >= doc["frames"]
    assert doc["rss"]["start_mb"] > 10  # measured once frames flow, not during start-up
    assert not Path(doc["config"]["report"]).exists()  # the temporary report is removed
    # The whole default path ran: nerve area and class tally, the web view's status asked for.
    assert "--serve 127.0.0.1:0" in doc["config"]["command"]
    covered = doc["coverage"]
    assert covered["nerve_area_unit"] == "px" and covered["classes"] == ["nerve"]
    assert covered["status_polls"] > 0 and covered["serve_url"].startswith("http://127.0.0.1:")
    assert summary["nerve_area"]["frames"] == summary["frames"]


def test_cli_soaks_a_multi_class_model_and_can_leave_serve_out(tmp_path: Path):
    out = tmp_path / "soak.json"
    vessel = Path(edge_root()) / "edge" / "models" / "nerve_vessel_int8.tflite"
    code = main(["soak", "--minutes", "0.15", "--sample-s", "0.5", "--block-s", "3",
                 "--model", str(vessel), "--no-serve", "--out", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    assert "--serve" not in doc["config"]["command"]
    assert doc["coverage"]["classes"] == ["nerve", "vessel"]
    assert doc["coverage"]["status_polls"] == 0 and doc["coverage"]["serve_url"] is None


def test_poll_urls_keep_the_token():
    assert poll_urls("http://127.0.0.1:8080/?token=abc") == [
        "http://127.0.0.1:8080/status.json?token=abc", "http://127.0.0.1:8080/metrics?token=abc",
        "http://127.0.0.1:8080/frame.jpg?token=abc"]
    assert poll_urls("http://[::1]:9/")[0] == "http://[::1]:9/status.json"


def test_edge_run_child_imports_the_same_edge_as_the_soak(tmp_path: Path):
    # A folder with another `edge` package must not win over this one (python -m would).
    (tmp_path / "edge").mkdir()
    (tmp_path / "edge" / "__init__.py").write_text("raise SystemExit('wrong edge imported')\n")
    (tmp_path / "edge" / "cli.py").write_text("")
    cmd = build_edge_run_command(["--source", "phantom"], None, 1, ["--max-frames", "3"], None)
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert edge_root() in cmd[2]


def test_cli_reports_a_failing_child(tmp_path: Path, capsys):
    code = main(["soak", "--minutes", "0.1", "--child", f"{sys.executable} -c 'exit(3)'",
                 "--out", str(tmp_path / "x.json")])
    assert code == 1
    assert "exit 3" in capsys.readouterr().err


def test_bad_minutes_is_a_user_error(tmp_path: Path):
    assert main(["soak", "--minutes", "0", "--out", str(tmp_path / "x.json")]) == 2
