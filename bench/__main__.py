"""`python -m bench load --customers 100000`: see bench/load.py for what is measured."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from graph.settings import StoreSettings

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    load = commands.add_parser("load", help="crm-graph load against raw UNWIND, same run")
    load.add_argument("--customers", type=int, default=100_000)
    load.add_argument("--lines-per-customer", type=float, default=10.0)
    load.add_argument("--seed", type=int, default=1)
    load.add_argument("--batch-size", type=int, default=5000)
    load.add_argument("--only", choices=["raw", "loader"])
    load.add_argument(
        "--work",
        type=Path,
        default=HERE / "results",
        help="where generated data, the store and results go",
    )
    args = parser.parse_args(argv)

    from bench.load import peak_rss_mb, run
    from loaders.synthetic import generate

    work: Path = args.work
    folder = work / f"business-{args.customers}-{args.lines_per_customer:g}-{args.seed}"
    if not (folder / "customers.csv").exists():
        print(f"generating {args.customers:,} customers into {folder} ...", flush=True)
        report = generate(
            folder, args.customers, args.seed, lines_per_customer=args.lines_per_customer
        )
        print(f"  generated in {report.seconds:.1f}s: {report.rows}", flush=True)
    settings = StoreSettings(kind="embedded", data_dir=work / "store")
    results = run(settings, folder, args.batch_size, args.only, work / "bench.rejects.csv")
    print(f"\n{'side':<16}{'rows':>12}{'seconds':>10}{'rows/s':>12}")
    for r in results:
        print(f"{r.side:<16}{r.rows:>12,}{r.seconds:>10.1f}{r.rows_per_second:>12,.0f}")
    summary: dict[str, object] = {
        "bench": "load",
        "customers": args.customers,
        "batch_size": args.batch_size,
        "machine": f"{platform.machine()} {platform.processor()} python {sys.version.split()[0]}",
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
    if len(results) == 2:
        ratio = results[1].rows_per_second / results[0].rows_per_second
        summary["ratio_loader_to_raw"] = round(ratio, 3)
        print(f"\nloader / raw = {ratio:.2f}x (target >= 0.5x)")
    print(f"peak RSS of this process: {summary['peak_rss_mb']} MB")
    out = work / f"load-{args.customers}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
