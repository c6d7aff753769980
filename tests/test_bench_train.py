"""The training bench at a small size: `python -m bench.train` as a real process generates a
business, loads it into its own store, trains, and writes its figures. No timings asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.server import REPO


def test_the_training_bench_times_each_stage_and_writes_its_results(tmp_path: Path) -> None:
    # when the bench trains on a generated business of 400 customers
    command = [sys.executable, "-m", "bench.train", "--customers", "400", "--work", str(tmp_path)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    # then it printed the table and wrote the results file it names
    assert "trained in" in done.stdout and "peak RSS MB" in done.stdout
    written = Path(done.stdout.strip().splitlines()[-1].removeprefix("results: "))
    [result] = json.loads(written.read_text())
    assert result["customers"] == 400 and result["seconds"] > 0
    assert {"read", "rfm", "segments", "churn", "clv", "write"} <= set(result["stages"])
    assert result["peak_rss_mb"] > 0
    peaks = list(result["peak_rss_mb_after"].values())  # where the peak grew, stage by stage
    assert peaks == sorted(peaks) and peaks[-1] <= result["peak_rss_mb"]
    assert result["worker_peak_rss_mb"] is None  # one process below 20k customers
    assert 0.5 <= result["metrics"]["churn_auc"] <= 1


def test_the_training_bench_loads_only_then_trains_with_the_processes_asked_for(
    tmp_path: Path,
) -> None:
    # when the bench only loads a size, then trains it with two processes
    base = [sys.executable, "-m", "bench.train", "--customers", "300", "--work", str(tmp_path)]
    loaded = subprocess.run([*base, "--load-only"], cwd=REPO, capture_output=True, text=True,
                            timeout=600)  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    # then loading wrote the store and no results
    assert "loaded 300 customers" in loaded.stdout and "trained in" not in loaded.stdout
    assert not list(tmp_path.glob("train-*.json"))
    trained = subprocess.run([*base, "--processes", "2"], cwd=REPO, capture_output=True,
                             text=True, timeout=600)  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    # and training reused the store and ran the rules in a worker process
    assert "loaded" not in trained.stdout
    written = Path(trained.stdout.strip().splitlines()[-1].removeprefix("results: "))
    [result] = json.loads(written.read_text())
    assert result["worker_peak_rss_mb"] is not None and result["worker_peak_rss_mb"] > 0
    assert "waiting for the worker" in result["stages"]
