"""The explore render bench at a small size: `python -m bench explore` as a real process (which
serves the page with `crm-graph serve` and drives Debian's Chromium): it draws every node and tie
of the seeded network, in and out of the background layout, and writes its results. No timings
are asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.chromium import unavailable
from bench.server import REPO


@pytest.mark.parametrize("nodes", [300, 1200])  # drawn after the layout, and before it
def test_the_explore_bench_draws_the_whole_network_and_reports(tmp_path: Path, nodes: int) -> None:
    if reason := unavailable():
        pytest.skip(reason)
    command = [
        sys.executable, "-m", "bench", "explore", "--nodes", str(nodes), "--runs", "1",
        "--pan-seconds", "0.5", "--work", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "median time to first frame" in done.stdout
    [out] = tmp_path.glob(f"explore-{nodes}-*.json")
    summary = json.loads(out.read_text())
    [run] = summary["runs"]
    # a tree over every node plus one random tie per node (self-ties skipped)
    assert run["nodes"] == nodes and nodes - 1 < run["edges"] <= 2 * (nodes - 1)
    assert run["firstFrameMs"] > 0 and run["fps"] > 0
    # the background layout runs 2 s after the first frame, for 1,000 nodes or more only
    assert (run["settledMs"] - run["firstFrameMs"] >= 2000) == (nodes >= 1000)
