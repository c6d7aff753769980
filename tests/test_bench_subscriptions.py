"""The subscriptions bench at a small size, as a real process (it serves a real store with
`crm-graph serve`): every subscriber receives every write's event once and in order, in each
phase. No timings are asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.server import REPO


def test_the_subscriptions_bench_reports_each_phase(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "subscriptions", "--subscribers", "0,2",
         "--writes", "5", "--work", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [p["subscribers"] for p in result["phases"]] == [0, 2]
    assert all(p["all_received_once_in_order"] for p in result["phases"])
    assert result["phases"][0]["delivery_ms"] == {"p50": None, "p99": None}
    assert result["phases"][1]["delivery_ms"]["p50"] > 0
    assert "2 subscribers: write p50" in done.stderr
