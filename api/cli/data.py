"""`generate` a synthetic business and `load` a contract folder into the store."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import Any

from crm_graph.api.cli._common import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_REJECTS,
    EXIT_USAGE,
    CommandError,
    on_store,
    positive_int,
    table,
)
from crm_graph.api.settings import Settings


def register(commands: Any) -> None:
    gen = commands.add_parser(
        "generate",
        help="write a synthetic business as a contract folder",
        description="Write customers, products, transactions, interactions and social ties that "
        "look like a real business (communities, heavy-tailed spend, seasonality, churn, "
        "friends' influence), deterministic for a seed.",
    )
    gen.add_argument("out", type=Path, help="folder to write (created; refused if not empty)")
    gen.add_argument("--customers", type=positive_int, default=10_000, help="default 10000")
    gen.add_argument("--seed", type=int, default=1, help="default 1")
    gen.add_argument("--start", type=date.fromisoformat, default=date(2023, 1, 1))
    gen.add_argument("--end", type=date.fromisoformat, default=date(2024, 12, 31))
    gen.add_argument(
        "--lines-per-customer",
        type=float,
        default=10.0,
        help="mean transaction lines per customer (default 10)",
    )
    gen.add_argument(
        "--force",
        action="store_true",
        help="write into OUT even if it is not empty (its contract files are overwritten)",
    )
    gen.set_defaults(handler=generate, store_use=None)

    load = commands.add_parser(
        "load",
        help="load a contract folder (CSV or JSON Lines) into the store",
        description="Validate every row and load it, or reject it with file, line, column and "
        "reason into the rejects file. Loading the same folder twice changes nothing.",
    )
    load.add_argument("folder", type=Path)
    load.add_argument(
        "--rejects",
        type=Path,
        help="rejects CSV (default: FOLDER.rejects.csv "
        "beside the folder; merges go to FOLDER.merges.csv)",
    )
    load.add_argument("--batch-size", type=positive_int, default=5000)
    load.add_argument("--default-region", help="ISO country code for phones without +CC")
    load.add_argument("--no-progress", action="store_true", help="no progress bars")
    load.add_argument(
        "--strict",
        action="store_true",
        help=f"exit with status {EXIT_REJECTS} when any row was rejected",
    )
    load.set_defaults(handler=load_command, store_use="creates")


def generate(args: argparse.Namespace, settings: Settings) -> int:
    from crm_graph.loaders.synthetic import generate

    if args.end <= args.start:
        raise CommandError("--end must be after --start", EXIT_USAGE)
    if args.out.exists() and not args.out.is_dir():
        raise CommandError(f"{args.out} is a file, not a folder", EXIT_USAGE)
    if args.out.is_dir() and any(args.out.iterdir()) and not args.force:
        found = sorted(p.name for p in args.out.iterdir())
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise CommandError(
            f"{args.out} is not empty ({shown}): choose a new folder, or add --force to "
            "overwrite its contract files",
            EXIT_REFUSED,
        )
    report = generate(
        args.out,
        args.customers,
        args.seed,
        start=args.start,
        end=args.end,
        lines_per_customer=args.lines_per_customer,
    )
    for name, count in report.rows.items():
        print(f"{name:<22} {count:>12,} rows")
    print(f"wrote {args.out} in {report.seconds:.1f}s")
    return EXIT_OK


def load_command(args: argparse.Namespace, settings: Settings) -> int:
    from crm_graph.loaders.load import load_folder

    report = on_store(
        settings,
        lambda store: load_folder(
            store,
            args.folder,
            rejects_path=args.rejects,
            batch_size=args.batch_size,
            default_region=args.default_region or settings.default_region,
            progress=False if args.no_progress else None,
        ),
    )
    for note in report.ignored_files:
        print(note)
    counts = ("read", "loaded", "new", "updated", "duplicates", "rejected", "fields_dropped")
    rows = [
        [f.file, *(getattr(f, c) for c in counts), ", ".join(f.ignored_columns)]
        for f in report.files
    ]
    rows.append(["total", *(sum(getattr(f, c) for f in report.files) for c in counts), ""])
    columns = ["file", *(c.replace("_", " ") for c in counts), "ignored columns"]
    print(table(columns, rows))
    for f in report.files:
        if f.duplicates:
            more = ", ..." if f.duplicates > len(f.duplicate_ids) else ""
            print(
                f"{f.file}: {f.duplicates:,} row(s) repeat an id met earlier in the file "
                f"({', '.join(f.duplicate_ids)}{more}); each updated what the earlier row loaded"
            )
    print(
        f"identity resolution merged {len(report.merges)} record(s) into existing customers"
        + (f" (see {report.merges_path})" if report.merges else "")
    )
    if report.rows_rejected or any(f.fields_dropped for f in report.files):
        print(f"rejected rows and dropped fields: {report.rejects_path}")
    rate = report.rows_read / report.seconds if report.seconds else 0.0
    print(f"loaded in {report.seconds:.1f}s ({rate:,.0f} rows/s) into {settings.store.description}")
    return EXIT_REJECTS if args.strict and report.rows_rejected else EXIT_OK
