"""The outbox bench at a small size, as a real process on an embedded store: each reader's poll
before and now finds the same events (100, or none for the type the outbox holds none of). No
timings are asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.server import REPO


def test_the_outbox_bench_compares_the_same_reads(tmp_path: Path) -> None:
    log = tmp_path / "outbox.log"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "outbox", "--events", "2500", "--repeat", "1",
         "--log", str(log)],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [line.split("|")[1:-1] for line in log.read_text().splitlines()[-4:]]
    assert [r[0].strip() for r in rows] == [
        "after 2,400",
        "after 1,250",
        "after 0",
        "after 0, customer.erased only",
    ]
    assert [(r[2].strip(), r[4].strip()) for r in rows] == [("100", "100")] * 3 + [("0", "0")]
    assert "python -m bench outbox --events 2500 --repeat 1" in log.read_text()
