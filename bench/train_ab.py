"""`python -m bench.train_ab --side before=TREE:DATA_DIR --side after=TREE:DATA_DIR --rounds 2`:
`crm-graph train` of two code trees side by side, alternating (before, after, before, after), each
on its own embedded store (loaded beforehand with that tree's own `crm-graph load` of the same
generated business, so each side reads the graph model its code writes).

Each run is the tree's own `.venv/bin/crm-graph train` in a fresh process (`CRM_GRAPH_DATA_DIR`
its data dir), measured from outside: wall seconds; CPU seconds of the command and its worker
(user + system of the waited-for process tree, from `wait4`); the embedded FalkorDB server's CPU
seconds over the run (it daemonizes, so it is read from `/proc`, sampled every 0.2 s); peak RSS of
the command's process, of its worker and of the store server (`VmHWM`, the largest sampled), and
the largest of the command and its worker from `wait4` (`tree_peak_rss_mb`); and the load
average before and after. Appends each run, as one JSON line, to `bench/train_ab.log`.

Used for issue 20's "training at 100k generated customers is no slower than today": "before" a
worktree of the code when the issue was filed, "after" this tree.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TICK = 0.2


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _descendants(root: int) -> list[int]:
    tree, found, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += tree.get(pid, [])
    return found


def _cpu_and_hwm(pid: int) -> tuple[float, float] | None:
    """(user + system CPU seconds, peak RSS MB) of a live process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(stat[11]) + int(stat[12])) / ticks
    hwm = next((int(line.split()[1]) / 1024 for line in status.splitlines()
                if line.startswith("VmHWM:")), 0.0)  # fmt: skip
    return cpu, hwm


def _store_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "falkordb.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def run_once(
    name: str, tree: Path, data_dir: Path, args: list[str], report: Path
) -> dict[str, Any]:
    env = {**os.environ, "CRM_GRAPH_DATA_DIR": str(data_dir)}
    command = [str(tree / ".venv/bin/crm-graph"), "train", "--report", str(report), *args]
    load_before = os.getloadavg()
    store_first: dict[int, float] = {}
    seen: dict[int, tuple[float, float]] = {}
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    rusage = None
    while rusage is None:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            rusage, process.returncode = usage, os.waitstatus_to_exitcode(status)
            break
        store = _store_pid(data_dir)
        for p in [*_descendants(process.pid), *([] if store is None else [store])]:
            sample = _cpu_and_hwm(p)
            if sample:
                if p == store:
                    store_first.setdefault(store, sample[0])
                # the largest of each: an exited process not yet reaped (a zombie) shows none
                before = seen.get(p, (0.0, 0.0))
                seen[p] = (max(before[0], sample[0]), max(before[1], sample[1]))
        time.sleep(TICK)
    wall = time.perf_counter() - started
    output = process.stdout.read().decode(errors="replace") if process.stdout else ""
    if process.returncode != 0:
        raise SystemExit(f"{name}: `{' '.join(command)}` failed ({process.returncode}):\n{output}")
    store_cpu = sum(seen[p][0] - first for p, first in store_first.items() if p in seen)
    store_hwm = max((seen[p][1] for p in store_first if p in seen), default=0.0)
    others = {p: v for p, v in seen.items() if p not in store_first and p != process.pid}
    return {
        "side": name,
        "tree": str(tree),
        "command": " ".join(command[1:]),
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": round(wall, 1),
        "cpu_s": round(rusage.ru_utime + rusage.ru_stime, 1),
        "store_cpu_s": round(store_cpu, 1),
        "peak_rss_mb": round(seen.get(process.pid, (0.0, rusage.ru_maxrss / 1024))[1]),
        "worker_peak_rss_mb": round(max((v[1] for v in others.values()), default=0.0)),
        "tree_peak_rss_mb": round(rusage.ru_maxrss / 1024),
        "store_peak_rss_mb": round(store_hwm),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "report_seconds": json.loads(report.read_text()).get("seconds"),
        "report_total_seconds": json.loads(report.read_text()).get("total_seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train_ab", description=__doc__)
    parser.add_argument("--side", action="append", required=True,
                        help="NAME=TREE:DATA_DIR (give two; run in the order given)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--log", type=Path, default=HERE / "train_ab.log")
    parser.add_argument("--work", type=Path, default=HERE / "results")
    parser.add_argument("train_args", nargs="*", help="after --: passed to `crm-graph train`")
    args = parser.parse_args(argv)
    sides = []
    for spec in args.side:
        name, _, rest = spec.partition("=")
        tree, _, data = rest.partition(":")
        sides.append((name, Path(tree), Path(data)))
    args.work.mkdir(parents=True, exist_ok=True)
    for round_ in range(1, args.rounds + 1):
        for name, tree, data in sides:
            report = args.work / f"train_ab-{name}-{round_}.json"
            result = {"round": round_, **run_once(name, tree, data, args.train_args, report)}
            print(json.dumps(result), flush=True)
            with args.log.open("a") as log:
                log.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
