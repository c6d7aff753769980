"""`python -m bench.train --customers 10000 100000`: how long `crm-graph train` takes, and how it
grows with the number of customers (about 10 order lines per customer).

For each size: a generated business (cached under --work), loaded into its own embedded store
(cached: a store already holding the customers is reused), then `analytics.train.train` timed
stage by stage (reading the graph, each model with its back-test, writing back). From 20k
customers `train` runs the rules and recommendations in a worker process beside the other
models: their stage times are the worker's, spent alongside the others, and "waiting for the
worker" is what the main process then waited for it. Peak RSS is the bench process's (the
largest size so far) and the worker's. Target: under 2 minutes at 100k customers / 1M order
lines.

`--store neo4j://user:pass@host:7687` (any `CRM_GRAPH_STORE` value) trains on that store instead:
its one database holds one size at a time, loaded (and, with `--wipe`, emptied first when it
holds another graph) as needed; the results name the store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from bench.business import NotTheBenchsGraph, bench_settings, ensure_loaded
from crm_graph.analytics.train import train
from crm_graph.graph import loader_writes
from crm_graph.graph.errors import ConfigurationError
from crm_graph.graph.store import open_store
from crm_graph.loaders.load import load_folder
from crm_graph.loaders.synthetic import generate

HERE = Path(__file__).resolve().parent


async def measure(
    customers: int, work: Path, seed: int, *, load_only: bool = False, processes: int | None = None,
    store_spec: str | None = None, allow_wipe: bool = False,
) -> dict[str, Any] | None:  # fmt: skip
    folder = work / f"business-{customers}-10-{seed}"
    if not (folder / "customers.csv").exists():
        generate(folder, customers, seed)
    settings = bench_settings(store_spec, work / f"train-store-{customers}")
    store = await open_store(settings)
    try:
        if settings.kind == "embedded":
            count = (await store.read(loader_writes.COUNT_CUSTOMERS))[0]["count"]
            if count == 0:
                started = time.perf_counter()
                await load_folder(store, folder, progress=False)
                print(
                    f"  loaded {customers:,} customers in {time.perf_counter() - started:.0f}s",
                    flush=True,
                )
        else:
            await ensure_loaded(
                store, folder, work / f"train-{settings.kind}-{customers}",
                work / f"train-{customers}.rejects.csv", external=True, allow_wipe=allow_wipe,
            )  # fmt: skip
        if load_only:
            return None
        started = time.perf_counter()
        report = await train(
            store,
            horizon_days=90,
            processes=processes,
            progress=lambda m: print("  " + m, flush=True),
        )
        seconds = time.perf_counter() - started
    finally:
        await store.close()
    return {
        "customers": customers,
        "store": settings.description if settings.kind != "embedded" else "embedded",
        "seconds": round(seconds, 1),
        "stages": {k: round(v, 1) for k, v in report.seconds.items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_rss_mb_after": {k: round(v) for k, v in report.peak_rss_mb.items()},
        "worker_peak_rss_mb": (
            None if report.worker_peak_rss_mb is None else round(report.worker_peak_rss_mb)
        ),
        "metrics": {
            "churn_auc": report.metrics.get("churn", {}).get("auc"),
            "demand_auc": report.metrics.get("demand", {}).get("auc"),
            "demand_auc_without_network": report.metrics.get("demand", {}).get(
                "auc_without_network"
            ),
            "demand_auc_naive_social": report.metrics.get("demand", {}).get("auc_naive_social"),
            "segments_k": report.metrics.get("segments", {}).get("k"),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train", description=__doc__)
    parser.add_argument("--customers", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=HERE / "results")
    parser.add_argument(
        "--load-only",
        action="store_true",
        help="generate and load each size's store (cached for later runs), without training",
    )
    parser.add_argument(
        "--processes",
        type=int,
        choices=(1, 2),
        help="train's processes (default: 2 from 20k customers on two cores or more)",
    )
    parser.add_argument(
        "--store",
        default="embedded",
        help="embedded (default: one embedded FalkorDB per size under --work) or any "
        "CRM_GRAPH_STORE value, e.g. neo4j://neo4j:pass@127.0.0.1:7687",
    )
    parser.add_argument(
        "--wipe",
        action="store_true",
        help="let the bench delete a graph it did not load in an external --store",
    )
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    try:
        bench_settings(args.store, args.work)
    except ConfigurationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results = []
    for n in args.customers:
        print(f"{n:,} customers", flush=True)
        try:
            result = asyncio.run(
                measure(n, args.work, args.seed, load_only=args.load_only,
                        processes=args.processes, store_spec=args.store, allow_wipe=args.wipe)
            )  # fmt: skip
        except NotTheBenchsGraph as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if result is None:
            continue
        results.append(result)
        print(f"  trained in {results[-1]['seconds']}s: {results[-1]['stages']}", flush=True)
    if not results:
        return 0
    print(f"\n{'customers':>10}{'seconds':>10}{'peak RSS MB':>13}{'worker MB':>11}")
    for r in results:
        worker = "-" if r["worker_peak_rss_mb"] is None else r["worker_peak_rss_mb"]
        print(f"{r['customers']:>10,}{r['seconds']:>10}{r['peak_rss_mb']:>13}{worker:>11}")
    out = args.work / f"train-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
