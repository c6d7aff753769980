"""`python -m bench load --customers 100000`, `python -m bench api --customers 100000`,
`python -m bench train --customers 10000`,
`python -m bench soak --customers 100000 --minutes 3`,
`python -m bench peer --store neo4j://...`, `python -m bench hostile --customers 10000`,
`python -m bench lag --customers 5000`, `python -m bench explore --nodes 2000`,
`python -m bench webhooks`, `python -m bench subscriptions --subscribers 0,10,100`: see
bench/load.py, bench/api.py, bench/train.py, bench/soak.py, bench/peer.py, bench/hostile.py,
bench/lag.py, bench/explore.py, bench/webhooks.py and bench/subscriptions.py for what is
measured. `--store` (load, api, train, peer, lag, hostile) runs on any CRM_GRAPH_STORE value
instead of the embedded FalkorDB, e.g. a Neo4j server."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from bench.business import business_folder
from crm_graph.graph.errors import ConfigurationError

HERE = Path(__file__).resolve().parent

STORE_HELP = (
    "the store to measure: embedded (default: an embedded FalkorDB under --work) or any "
    "CRM_GRAPH_STORE value, e.g. neo4j://neo4j:pass@127.0.0.1:7687 (a database the bench may "
    "fill; it refuses to wipe one holding another graph without --wipe)"
)


def _store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default="embedded", help=STORE_HELP)
    parser.add_argument(
        "--wipe",
        action="store_true",
        help="let the bench delete a graph it did not load in an external --store",
    )


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["train"]:  # `python -m bench train ...` is `python -m bench.train ...`
        from bench.train import main as train_main

        return train_main(given[1:])
    if given[:1] == ["outbox"]:  # bench/outbox.py
        from bench.outbox import main as outbox_main

        return outbox_main(given[1:])
    if given[:1] == ["subscriptions"]:  # bench/subscriptions.py
        from bench.subscriptions import main as subscriptions_main

        return subscriptions_main(given[1:])
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "train", help="how long `crm-graph train` takes (python -m bench train --help)"
    )
    load = commands.add_parser("load", help="crm-graph load against raw UNWIND, same run")
    load.add_argument("--customers", type=int, default=100_000)
    load.add_argument("--lines-per-customer", type=float, default=10.0)
    load.add_argument("--seed", type=int, default=1)
    load.add_argument("--batch-size", type=int, default=5000)
    load.add_argument("--only", choices=["raw", "loader"])
    load.add_argument(
        "--raw-forms",
        help="raw write forms to try, comma-separated BATCHxWRITERS (e.g. 5000x1,2000x2): the "
        "best is the reference (default: 5000x1 embedded; a sweep on Neo4j)",
    )
    load.add_argument(
        "--writers",
        type=int,
        help="the loader's concurrent writers of disjoint batches (default: the store's)",
    )
    _store_arguments(load)
    load.add_argument(
        "--work",
        type=Path,
        default=HERE / "results",
        help="where generated data, the store and results go",
    )
    api = commands.add_parser("api", help="GraphQL customer 360 over HTTP against raw Cypher")
    api.add_argument("--customers", type=int, default=100_000)
    api.add_argument("--clients", type=int, default=8, help="concurrent clients for requests/s")
    api.add_argument("--seconds", type=float, default=20.0, help="length of each measured phase")
    api.add_argument("--warmup", type=int, default=300, help="unmeasured requests per side")
    api.add_argument(
        "--audit-each-request",
        action="store_true",
        help="also measure GraphQL on a server writing an audit statement per request",
    )
    _store_arguments(api)
    api.add_argument(
        "--work",
        type=Path,
        default=HERE / "results",
        help="where generated data, the store and results go",
    )
    peer = commands.add_parser(
        "peer", help="crm-graph against the Neo4j GraphQL Library on the same Neo4j, same run"
    )
    peer.add_argument("--customers", type=int, default=20_000)
    peer.add_argument("--clients", type=int, default=8, help="concurrent clients for requests/s")
    peer.add_argument("--seconds", type=float, default=5.0, help="length of each phase of a block")
    peer.add_argument("--blocks", type=int, default=3, help="alternating blocks (sides rotate)")
    peer.add_argument("--warmup", type=int, default=300, help="unmeasured requests per side")
    peer.add_argument("--check", type=int, default=50, help="customers whose answers are compared")
    peer.add_argument(
        "--work",
        type=Path,
        default=HERE / "results",
        help="where generated data, the peer's npm packages and results go",
    )
    _store_arguments(peer)
    soak = commands.add_parser("soak", help="concurrent 360 reads and writes for minutes")
    soak.add_argument("--customers", type=int, default=100_000)
    soak.add_argument("--minutes", type=float, default=3.0, help="length of the soak")
    soak.add_argument("--readers", type=int, default=8, help="clients reading the 360")
    soak.add_argument("--writers", type=int, default=2, help="clients writing")
    soak.add_argument("--warmup", type=int, default=200, help="unmeasured reads first")
    soak.add_argument("--seed", type=int, default=1)
    soak.add_argument(
        "--work",
        type=Path,
        default=HERE / "results",
        help="where generated data, the stores and results go",
    )
    hostile = commands.add_parser(
        "hostile", help="p99 of the 360 while hostile clients attack, against without them"
    )
    hostile.add_argument("--customers", type=int, default=10_000)
    hostile.add_argument("--clients", type=int, default=4, help="clients of normal traffic")
    hostile.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    hostile.add_argument("--warmup", type=int, default=300, help="unmeasured requests first")
    _store_arguments(hostile)
    hostile.add_argument("--work", type=Path, default=HERE / "results",
                         help="where generated data, the store and results go")  # fmt: skip
    hooks = commands.add_parser(
        "webhooks", help="write p50 with 0 and with 10 webhook subscriptions (one dead)"
    )
    hooks.add_argument("--writes", type=int, default=300, help="measured writes per phase")
    hooks.add_argument("--warmup", type=int, default=50, help="unmeasured writes first")
    hooks.add_argument("--work", type=Path, default=HERE / "results",
                       help="where the store and results go")  # fmt: skip
    _store_arguments(hooks)
    lag = commands.add_parser(
        "lag", help="the event loop's lag while the heaviest allowed requests run"
    )
    lag.add_argument("--customers", type=int, default=5_000)
    lag.add_argument("--clients", type=int, default=4, help="concurrent heavy clients")
    lag.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    _store_arguments(lag)
    lag.add_argument("--work", type=Path, default=HERE / "results",
                     help="where generated data, the store and results go")  # fmt: skip
    explore = commands.add_parser(
        "explore", help="the network picture in Chromium: first frame, fps"
    )
    explore.add_argument("--nodes", type=int, default=2000)
    explore.add_argument("--runs", type=int, default=3, help="renders in the same page")
    explore.add_argument("--pan-seconds", type=float, default=3.0, help="length of the pan")
    explore.add_argument(
        "--work",
        type=Path,
        default=HERE / "results",
        help="where the server's empty store and the results go",
    )
    args = parser.parse_args(given)
    if args.command == "hostile":
        return _hostile(args)
    if args.command == "lag":
        return _lag(args)
    if args.command == "explore":
        return _explore(args)
    if args.command == "webhooks":
        return _webhooks(args)
    if args.command == "api":
        return _api(args)
    if args.command == "soak":
        return _soak(args)
    if args.command == "peer":
        return _peer(args)

    return _load(args)


def _load(args: argparse.Namespace) -> int:
    from bench.business import NotTheBenchsGraph, bench_settings
    from bench.load import parse_forms, peak_rss_mb, run

    work: Path = args.work
    try:
        settings = bench_settings(args.store, work / "store")
        forms = parse_forms(args.raw_forms, settings)
    except (ConfigurationError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    folder = business_folder(work, args.customers, args.lines_per_customer, args.seed)
    try:
        results = run(settings, folder, args.batch_size, args.only, work / "bench.rejects.csv",
                      forms=forms, writers=args.writers, allow_wipe=args.wipe)  # fmt: skip
    except NotTheBenchsGraph as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"\n{settings.description}")
    print(f"{'side':<34}{'rows':>12}{'seconds':>10}{'rows/s':>12}")
    for r in results:
        print(f"{r.side:<34}{r.rows:>12,}{r.seconds:>10.1f}{r.rows_per_second:>12,.0f}")
    summary: dict[str, object] = {
        "bench": "load",
        "store": settings.description,
        "customers": args.customers,
        "batch_size": args.batch_size,
        "machine": _machine(),
        "results": [
            {
                "side": r.side,
                "rows": r.rows,
                "seconds": round(r.seconds, 2),
                "rows_per_second": round(r.rows_per_second),
            }
            for r in results
        ],
        "peak_rss_mb": round(peak_rss_mb()),
    }
    raws = [r for r in results if r.side.startswith("raw")]
    loaders = [r for r in results if not r.side.startswith("raw")]
    if raws and loaders:
        best = max(raws, key=lambda r: r.rows_per_second)
        ratio = loaders[0].rows_per_second / best.rows_per_second
        summary["best_raw"] = best.side
        summary["ratio_loader_to_raw"] = round(ratio, 3)
        print(f"\nloader / best raw ({best.side}) = {ratio:.2f}x (target >= 0.5x)")
    print(f"peak RSS of this process: {summary['peak_rss_mb']} MB")
    out = work / f"load-{settings.kind}-{args.customers}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"results: {out}")
    return 0


def _machine() -> str:
    return (
        f"{platform.machine()} {platform.processor()} python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs"
    )


def _api(args: argparse.Namespace) -> int:
    import asyncio

    from bench.api import run
    from bench.business import NotTheBenchsGraph, bench_settings

    if args.customers < 1 or args.clients < 1 or args.seconds <= 0 or args.warmup < 0:
        print("--customers and --clients must be at least 1, --seconds positive", file=sys.stderr)
        return 2
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    try:
        bench_settings(args.store, work)
    except ConfigurationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    folder = business_folder(work, args.customers, 10.0, 1)
    load_before = os.getloadavg()
    try:
        result = asyncio.run(
            run(work, folder, args.customers, clients=args.clients, seconds=args.seconds,
                warmup=args.warmup, store=args.store, allow_wipe=args.wipe,
                audit_each=args.audit_each_request)
        )  # fmt: skip
    except NotTheBenchsGraph as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the API server and the store are stopped", file=sys.stderr)
        return 130
    n = args.clients
    print(f"\n{result.customers_in_graph:,} customers in the graph; {args.seconds:g}s per phase")
    print(f"{'side':<18}{'p50 ms':>9}{'p99 ms':>9}{'req/s 1 client':>16}"
          f"{f'req/s {n} clients':>18}{f'p50 ms {n} cl.':>15}{'errors':>8}")  # fmt: skip
    sides = [result.raw, result.graphql] + ([result.audit_each] if result.audit_each else [])
    for side in sides:
        seq, con = side.sequential, side.concurrent
        print(
            f"{side.side:<18}{seq.percentile(0.5):>9.2f}{seq.percentile(0.99):>9.2f}"
            f"{seq.per_second:>16,.0f}{con.per_second:>18,.0f}{con.percentile(0.5):>15.2f}"
            f"{seq.errors + con.errors:>8}"
        )
        for phase in (seq, con):
            if phase.first_error:
                print(f"  first error: {phase.first_error}")
    engine = result.engine
    columns = (("bench", 8), ("api_server", 12), (engine, 10))
    print(f"\n{'CPU ms per request':<24}{'bench':>8}{'API server':>12}"
          f"{'Neo4j' if engine == 'neo4j' else 'FalkorDB':>10}")  # fmt: skip
    for side in sides:
        for phase in (side.sequential, side.concurrent):
            cpu = phase.cpu_ms_per_request
            name = "audit/req" if side is result.audit_each else side.side.split()[0]
            label = f"{name}, {phase.clients} client{'s' if phase.clients > 1 else ''}"
            print(f"{label:<24}" + "".join(
                f"{cpu[k]:>{w}.2f}" if k in cpu else f"{'-':>{w}}"
                for k, w in columns
            ))  # fmt: skip
    floor = result.floor
    print(f"{'GraphQL floor, 1 client':<24}" + "".join(
        f"{floor.cpu_ms_per_request[k]:>{w}.2f}" if k in floor.cpu_ms_per_request else f"{'-':>{w}}"
        for k, w in columns
    ))  # fmt: skip
    load_after = os.getloadavg()
    print(f"\nGraphQL p50 / raw p50 = {result.p50_ratio:.2f}x (target <= 3x)")
    print(f"floor {{ __typename }} with a key: p50 {floor.percentile(0.5):.2f} ms, "
          f"p99 {floor.percentile(0.99):.2f} ms = {result.floor_ratio:.2f}x the raw p50 "
          f"(errors: {floor.errors})")  # fmt: skip
    print(f"GraphQL / raw requests/s with {n} clients = {result.throughput_ratio:.2f}x")
    if result.audit_each is not None:
        each, raw_p50 = result.audit_each, result.raw.sequential.percentile(0.5)
        each_ratio = each.sequential.percentile(0.5) / raw_p50 if raw_p50 else 0.0
        each_rps = result.raw.concurrent.per_second
        print(f"audit statement per request (CRM_GRAPH_AUDIT_FLUSH_SECONDS=0): GraphQL p50 / raw "
              f"p50 = {each_ratio:.2f}x, requests/s with {n} clients / raw = "
              f"{each.concurrent.per_second / each_rps if each_rps else 0.0:.2f}x")  # fmt: skip
    rss = {k: None if v is None else round(v) for k, v in result.rss_mb.items()}
    print(f"API server RSS: {rss['api_start']} MB at start, {rss['api_end']} MB at end "
          f"({engine}: {rss['engine_start']} MB, {rss['engine_end']} MB)")  # fmt: skip
    summary: dict[str, object] = {
        "bench": "api",
        "store": args.store if args.store == "embedded" else engine,
        "customers": args.customers,
        "customers_in_graph": result.customers_in_graph,
        "loaded_this_run": result.loaded,
        "clients": n,
        "seconds_per_phase": args.seconds,
        "warmup_requests": args.warmup,
        "http_client": "bench.http (HTTP/1.1 on asyncio streams; httpx before 2026-11-22)",
        "machine": _machine(),
        "crm_graph_env": os.environ.get("CRM_GRAPH_ENV") or "(unset: default)",
        "results": [side.summary() for side in sides],
        "floor": {"query": "{ __typename }", **result.floor.summary()},
        "ratio_graphql_to_raw_p50": round(result.p50_ratio, 3),
        "ratio_floor_to_raw_p50": round(result.floor_ratio, 3),
        "ratio_graphql_to_raw_throughput": round(result.throughput_ratio, 3),
        "rss_mb": rss,
        "load_average_1min": {"before": load_before[0], "after": load_after[0]},
    }
    out = work / f"api-{engine}-{args.customers}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after: "
          f"{os.cpu_count()} CPUs shared by the bench, the API server, FalkorDB and anything "
          f"else running")  # fmt: skip
    print(f"results: {out}")
    failed = floor.errors + sum(
        s.sequential.errors + s.concurrent.errors for s in (result.raw, result.graphql)
    )
    return 1 if failed else 0


def _peer(args: argparse.Namespace) -> int:
    import asyncio

    from bench.business import NotTheBenchsGraph
    from bench.peer import PeerError, report, run, summary

    if min(args.customers, args.clients, args.blocks, args.check) < 1 or args.seconds <= 0:
        print("--customers, --clients, --blocks and --check must be at least 1, --seconds "
              "positive", file=sys.stderr)  # fmt: skip
        return 2
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    folder = business_folder(work, args.customers, 10.0, 1)
    try:
        result = asyncio.run(
            run(work, folder, args.customers, store=args.store, clients=args.clients,
                seconds=args.seconds, blocks=args.blocks, warmup=args.warmup, check=args.check,
                allow_wipe=args.wipe)
        )  # fmt: skip
    except (PeerError, NotTheBenchsGraph, ConfigurationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: both servers are stopped", file=sys.stderr)
        return 130
    print()
    for line in report(result, args.clients):
        print(line)
    out = work / f"peer-{args.customers}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({**summary(result, args), "machine": _machine()}, indent=2))
    print(f"results: {out}")
    errors = sum(s.sequential.errors + s.concurrent.errors for s in result.sides)
    return 1 if errors else 0


def _hostile(args: argparse.Namespace) -> int:
    import asyncio

    from bench.hostile import run

    if args.customers < 1 or args.clients < 1 or args.seconds <= 0 or args.warmup < 0:
        print("--customers and --clients must be at least 1, --seconds positive", file=sys.stderr)
        return 2
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    folder = business_folder(work, args.customers, 10.0, 1)
    load_before = os.getloadavg()
    result = asyncio.run(run(work, folder, args.customers, clients=args.clients,
                             seconds=args.seconds, warmup=args.warmup, store=args.store,
                             allow_wipe=args.wipe))  # fmt: skip
    load_after = os.getloadavg()
    engine = "neo4j" if args.store.startswith(("neo4j", "bolt")) else "falkordb"
    lines = [f"{result.customers_in_graph:,} customers on {engine}; {args.clients} clients of "
             f"normal traffic (the 360); {args.seconds:g}s per phase",
             f"{'phase':<26}{'requests':>9}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}"]  # fmt: skip
    for name, phase in (("alone", result.alone), ("with attackers", result.attacked)):
        lines.append(f"{name:<26}{phase.requests:>9}{phase.errors:>8}"
                     f"{phase.percentile(0.5):>9.2f}{phase.percentile(0.99):>9.2f}")  # fmt: skip
    lines.append(f"p99 with attackers / p99 alone = {result.p99_ratio:.2f}x")
    lines.append("attackers (sent, slowest answer, outcomes):")
    for name, tally in result.attacks.items():
        outcomes = ", ".join(f"{k} {v}" for k, v in tally.outcomes.most_common())
        lines.append(f"  {name:<22}{tally.sent:>6}{tally.slowest_s:>8.2f}s  {outcomes}")
    lines.append(f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after "
                 f"({os.cpu_count()} CPUs shared)")  # fmt: skip
    text = "\n".join(lines)
    print(text)
    out = work / f"hostile-{args.customers}-{time.strftime('%Y%m%dT%H%M%S')}.txt"
    out.write_text(text + "\n")
    with open(HERE / "hostile.log", "a") as log:  # the runs' record, kept with the code
        log.write(f"\n## {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, python -m bench hostile "
                  f"--customers {args.customers} --clients {args.clients} --seconds "
                  f"{args.seconds:g} --warmup {args.warmup}"
                  f"{' --store neo4j://...' if engine == 'neo4j' else ''}\n{text}\n")  # fmt: skip
    print(f"results: {out} (and appended to {HERE / 'hostile.log'})")
    return 1 if result.alone.errors or result.attacked.errors else 0


def _webhooks(args: argparse.Namespace) -> int:
    import asyncio

    from bench.webhooks import LIVE, PHASES, NotTheBenchsGraph, run
    from crm_graph.graph.settings import parse_store

    if args.writes < 1 or args.warmup < 0:
        print("--writes must be at least 1, --warmup at least 0", file=sys.stderr)
        return 2
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    try:
        described = (
            "embedded FalkorDB (a new store under --work)"
            if args.store == "embedded"
            else parse_store(args.store).description
        )
    except ConfigurationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    try:
        result = asyncio.run(run(work, args.writes, args.warmup, store=args.store,
                                 allow_wipe=args.wipe))  # fmt: skip
    except NotTheBenchsGraph as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    load_after = os.getloadavg()
    base = result.phases[PHASES[0]].p50
    lines = [
        f"upsertCustomers (one customer) over HTTP, one client, {result.writes} writes a phase; "
        f"{described}",
        f"{'phase':<38}{'p50 ms':>9}{'p99 ms':>9}{'x p50':>7}{'CPU s serve':>13}"
        f"{'CPU s worker':>14}",
    ]
    complete = True
    for name in PHASES:
        phase = result.phases[name]
        used = result.cpu_seconds[name]
        worker = f"{used['worker']:>14.2f}" if used["worker"] else f"{'-':>14}"
        lines.append(f"{name:<38}{phase.p50:>9.2f}{phase.percentile(0.99):>9.2f}"
                     f"{phase.p50 / base:>7.2f}{used['serve']:>13.2f}{worker}")  # fmt: skip
    for name in PHASES[1:]:
        got = result.delivered[name]
        done = all(d == result.expected[name] for d in got[:LIVE])
        complete = complete and done
        lines.append(
            f"{name}: delivered per live receiver {sorted(set(got[:LIVE]))} of "
            f"{result.expected[name]} ({'all within' if done else 'NOT all, after'} "
            f"{result.drain_seconds[name]:.1f} s after the phase); the dead one answered "
            f"{got[LIVE]}"
        )
    lines.append(f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after "
                 f"({os.cpu_count()} CPUs shared)")  # fmt: skip
    text = "\n".join(lines)
    print(text)
    out = work / f"webhooks-{time.strftime('%Y%m%dT%H%M%S')}.txt"
    out.write_text(text + "\n")
    store = "" if args.store == "embedded" else " --store neo4j://..."
    with open(HERE / "webhooks.log", "a") as log:  # the runs' record, kept with the code
        log.write(f"\n## {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, python -m bench webhooks "
                  f"--writes {args.writes} --warmup {args.warmup}{store}\n{text}\n")  # fmt: skip
    print(f"results: {out} (and appended to {HERE / 'webhooks.log'})")
    return 0 if complete else 1


def _lag(args: argparse.Namespace) -> int:
    import asyncio

    from bench.business import bench_settings
    from bench.lag import report, run

    if args.customers < 1 or args.clients < 1 or args.seconds <= 0:
        print("--customers and --clients must be at least 1, --seconds positive", file=sys.stderr)
        return 2
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    engine = bench_settings(args.store, work).kind
    folder = business_folder(work, args.customers, 10.0, 1)
    load_before = os.getloadavg()
    phases = asyncio.run(run(work, folder, args.customers, clients=args.clients,
                             seconds=args.seconds, store=args.store,
                             allow_wipe=args.wipe))  # fmt: skip
    load_after = os.getloadavg()
    lines = [f"{args.customers:,} customers on {engine}; {args.clients} heavy clients; "
             f"{args.seconds:g}s per phase; a tick asked every 5 ms", *report(phases),
             f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after "
             f"({os.cpu_count()} CPUs shared)"]  # fmt: skip
    text = "\n".join(lines)
    print(text)
    with open(HERE / "lag.log", "a") as log:  # the runs' record, kept with the code
        log.write(f"\n## {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, python -m bench lag "
                  f"--customers {args.customers} --clients {args.clients} --seconds "
                  f"{args.seconds:g} (store: {engine})\n{text}\n")  # fmt: skip
    return 0


def _explore(args: argparse.Namespace) -> int:
    import asyncio

    from bench.explore import run

    if args.nodes < 2 or args.runs < 1 or args.pan_seconds <= 0:
        print("--nodes must be at least 2, --runs at least 1, --pan-seconds positive",
              file=sys.stderr)  # fmt: skip
        return 2
    load_before = os.getloadavg()
    result = asyncio.run(run(args.work, args.nodes, args.runs, args.pan_seconds))
    load_after = os.getloadavg()
    print(f"\n{args.nodes:,} customers, {result.runs[0]['edges']:,} ties; "
          f"WebGL: {result.runs[0]['renderer']}")  # fmt: skip
    print(f"{'run':<5}{'build ms':>10}{'layout ms':>11}{'draw ms':>9}{'first frame ms':>16}"
          f"{'settled ms':>12}{'pan fps':>9}{'longest frame ms':>18}")  # fmt: skip
    for i, r in enumerate(result.runs, 1):
        times = f"{r['buildMs']:>10.0f}{r['layoutMs']:>11.0f}{r['drawMs']:>9.0f}"
        frames = f"{r['settledMs']:>12.0f}{r['fps']:>9.1f}{r['longestFrameMs']:>18.0f}"
        print(f"{i:<5}{times}{r['firstFrameMs']:>16.0f}{frames}")
    first = result.median("firstFrameMs")
    print(f"\nmedian time to first frame {first:.0f} ms (target < 2000 ms), "
          f"median pan {result.median('fps'):.1f} frames/s")  # fmt: skip
    print(f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    summary = {
        "bench": "explore",
        "nodes": args.nodes,
        "pan_seconds": args.pan_seconds,
        "machine": _machine(),
        "runs": result.runs,
        "median_first_frame_ms": round(first),
        "median_fps": round(result.median("fps"), 2),
        "load_average_1min": {"before": load_before[0], "after": load_after[0]},
    }
    args.work.mkdir(parents=True, exist_ok=True)
    out = args.work / f"explore-{args.nodes}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"results: {out}")
    return 0


def _soak(args: argparse.Namespace) -> int:
    import asyncio

    from bench.soak import run

    if args.customers < 1 or args.readers < 1 or args.writers < 1 or args.minutes <= 0:
        print("--customers, --readers and --writers must be at least 1, --minutes positive",
              file=sys.stderr)  # fmt: skip
        return 2
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    folder = business_folder(work, args.customers, 10.0, 1)
    load_before = os.getloadavg()
    try:
        result = asyncio.run(
            run(work, folder, args.customers, seconds=args.minutes * 60, readers=args.readers,
                writers=args.writers, warmup=args.warmup, seed=args.seed,
                on_progress=lambda text: print(f"  {text} ...", flush=True))
        )  # fmt: skip
    except KeyboardInterrupt:
        print("interrupted: the API server and the store are stopped", file=sys.stderr)
        return 130
    load_after = os.getloadavg()
    print(f"\n{result.customers_in_graph:,} customers in the graph; soaked {result.seconds:.0f}s "
          f"with {args.readers} readers and {args.writers} writers")  # fmt: skip
    print(f"{'kind':<26}{'requests':>10}{'req/s':>8}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}")
    for name, kind in result.kinds.items():
        p50, p99 = kind.percentile(0.5), kind.percentile(0.99)
        print(f"{name:<26}{kind.requests:>10,}{kind.requests / result.seconds:>8.1f}"
              f"{kind.errors:>8}{p50:>9.2f}{p99:>9.2f}")  # fmt: skip
        for error in kind.first_errors:
            print(f"  error: {error}")
    marks = result.memory
    print("RSS MB        " + "".join(f"{m:>10}" for m in ("start", "middle", "end")))
    for who, key in (("API server", "api_mb"), ("FalkorDB", "falkordb_mb")):
        print(f"{who:<14}" + "".join(
            f"{marks[m][key] if m in marks else '-':>10}" for m in ("start", "middle", "end")
        ))  # fmt: skip
    check = result.check
    print(f"write check: {check.customers:,} written customers compared, "
          f"{check.skipped_uncertain} skipped (a write without answer), "
          f"{len(check.mismatches)} mismatch(es)")  # fmt: skip
    for line in check.mismatches[:20]:
        print(f"  {line}")
    if result.server_tracebacks:
        print(f"the server logged {result.server_tracebacks} traceback(s): see its log")
    summary: dict[str, object] = {
        "bench": "soak",
        "customers": args.customers,
        "minutes": args.minutes,
        "warmup_reads": args.warmup,
        "seed": args.seed,
        "machine": _machine(),
        "crm_graph_env": os.environ.get("CRM_GRAPH_ENV") or "(unset: default)",
        **result.summary(),
        "load_average_1min": {"before": load_before[0], "after": load_after[0]},
    }
    out = work / f"soak-{args.customers}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"results: {out}")
    print("OK: no errors, every acknowledged write is in the graph" if result.ok else "FAILED")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
