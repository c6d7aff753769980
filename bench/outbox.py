"""`python -m bench outbox --events 200000`: what one poll of the outbox costs as the backlog
grows, before (one statement finding every event after the reader's position, sorting them all
and keeping 100) and now (`events.read_after`: windows of `events.WINDOW` sequences on the
index, at most `events.WINDOWS` of them), side by side in one run on one store (embedded
FalkorDB in a temporary folder, or `--store`, a database the bench may empty).

Readers: one near the end of the outbox, one in the middle, one at 0 (a subscription replaying,
a webhook far behind), and one at 0 of a type the outbox holds none of (a webhook of some
types only: before, it never moved past the events of other types and read them all at every
poll). Each is timed `--repeat` times, alternating before/now; the median is reported. Appends
its table to `bench/outbox.log`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.business import bench_settings
from crm_graph.graph import events
from crm_graph.graph.store import GraphStore, open_store

HERE = Path(__file__).resolve().parent

BEFORE = """
MATCH (e:Event)
WHERE e.sequence > $after AND ($types IS NULL OR e.type IN $types)
WITH e ORDER BY e.sequence LIMIT $limit
RETURN e.sequence AS sequence, e.type AS type, e.at AS at, e.customerIds AS customerIds,
       e.data AS data, e.amount AS amount
"""
"""`events.EVENTS_AFTER` before the windows (commit 875d84a), as `events_after` ran it."""


async def write_backlog(store: GraphStore, count: int) -> None:
    """An outbox of `count` events of customer.updated (sequences 1 to `count`, the counter
    with them), written directly in statements of 6,000, after any events there were deleted.
    Also the backlog of the outbox's tests (`tests/graph/test_events.py`)."""
    await store.write("MATCH (e:Event) DETACH DELETE e")
    for start in range(0, count, 6_000):
        await store.write(
            "UNWIND range($a, $b) AS i CREATE (:Event {sequence: i, type: 'customer.updated', "
            "at: timestamp(), customerIds: ['c' + toString(i % 1000)], data: '{}'})",
            {"a": start + 1, "b": min(start + 6_000, count)},
        )
    await store.write("MERGE (s:EventSequence {id: 'events'}) SET s.value = $n", {"n": count})


async def _before(store: GraphStore, after: int, types: list[str] | None) -> int:
    rows = await store.read(BEFORE, {"after": after, "types": types, "limit": 100})
    return len(rows)


async def _now(store: GraphStore, after: int, types: list[str] | None) -> int:
    page = await events.read_after(store, after, types=types, limit=100)
    return len(page.events)


async def _timed(run: Any) -> tuple[float, int]:
    started = time.perf_counter()
    found = await run()
    return (time.perf_counter() - started) * 1000, found


async def bench(store_uri: str | None, count: int, repeat: int) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as work:
        store = await open_store(bench_settings(store_uri, Path(work)))
        try:
            print(f"writing {count:,} events ...", flush=True)
            await write_backlog(store, count)
            readers = [
                (f"after {count - 100:,}", count - 100, None),
                (f"after {count // 2:,}", count // 2, None),
                ("after 0", 0, None),
                ("after 0, customer.erased only", 0, [events.CUSTOMER_ERASED]),
            ]
            lines = [
                f"| reader ({count:,} events, {store.dialect.name}) | before ms | events "
                "| now ms | events |",
                "|---|---|---|---|---|",
            ]
            for name, after, types in readers:
                await _before(store, after, types)  # plans cached, caches warm, for both
                await _now(store, after, types)
                before: list[float] = []
                now: list[float] = []
                for _ in range(repeat):  # alternating, one of each per round
                    ms, found_before = await _timed(lambda a=after, t=types: _before(store, a, t))
                    before.append(ms)
                    ms, found_now = await _timed(lambda a=after, t=types: _now(store, a, t))
                    now.append(ms)
                lines.append(f"| {name} | {statistics.median(before):.1f} | {found_before} "
                             f"| {statistics.median(now):.1f} | {found_now} |")  # fmt: skip
                print(lines[-1], flush=True)
            return lines
        finally:
            await store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench outbox", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--store", default=None, help="embedded (default) or a CRM_GRAPH_STORE")
    parser.add_argument("--log", default=str(HERE / "outbox.log"), help="appended to")
    args = parser.parse_args(argv)
    lines = asyncio.run(bench(args.store, args.events, args.repeat))
    load = os.getloadavg()[0]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    store = f" --store {args.store.split('://')[0]}://..." if args.store else ""
    header = (
        f"\n{stamp} python -m bench outbox --events {args.events} --repeat {args.repeat}{store}"
        f" (load average {load:.1f}; median of the runs, alternating before/now)"
    )
    with Path(args.log).open("a", encoding="utf-8") as log:
        log.write("\n".join([header, *lines]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
