"""--strategy multiworker: 2 local workers (subprocesses with TF_CONFIG) train a few steps."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

WORKERS = 2
TIMEOUT_S = 150  # per worker; the run itself takes well under a minute on 2 cores
REPO = Path(__file__).parents[2]


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.mark.slow
def test_two_local_workers_train_and_the_chief_writes_the_run(kaggle_dir, tmp_path):
    hosts = [f"localhost:{p}" for p in free_ports(WORKERS)]
    out = tmp_path / "run"
    args = [sys.executable, "-m", "train.cli", "--data", str(kaggle_dir), "--out", str(out),
            "--strategy", "multiworker", "--epochs", "1", "--input-size", "32x48",
            "--base-filters", "4", "--depth", "2", "--batch", "4", "--max-steps-per-epoch",
            "2", "--val-fraction", "0.34", "--threads", "1", "--progress", "2"]
    procs = []
    for i in range(WORKERS):
        tf_config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "PYTHONPATH": str(REPO)}
        procs.append(subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=TIMEOUT_S)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for i, p in enumerate(procs):
        assert p.returncode == 0, f"worker {i} failed:\n{logs[i][-3000:]}"
    assert (out / "model.keras").is_file() and (out / "metrics.json").is_file()
    with open(out / "history.csv", newline="") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0]
    assert "val_dice:" in logs[0] and "val_dice:" not in logs[1]  # only the chief reports
