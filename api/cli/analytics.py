"""`train` the analytics and write scores back; `score` customers with the saved models."""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path
from typing import Any

from crm_graph.api.cli._common import EXIT_OK, CommandError, on_store, positive_int
from crm_graph.api.settings import Settings


def register(commands: Any) -> None:
    train = commands.add_parser(
        "train",
        help="train the analytics and write scores back",
        description="Train every model the data supports as of a date (default: the day after "
        "the last order or contact), evaluate each on held-out data, write scores, segments and "
        "model cards back to the graph, and print a summary.",
    )
    train.add_argument(
        "--as-of",
        type=end_of_utc_date,
        help="YYYY-MM-DD: train on what was known at the end of that day (UTC); default: the "
        "last day with an order or contact",
    )
    train.add_argument("--horizon-days", type=positive_int, default=90)
    train.add_argument("--report", type=Path, help="write the metrics as JSON to this file")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--processes",
        type=int,
        choices=(1, 2),
        help="2: a worker process makes the rules and recommendations while the other models "
        "train (default: 2 from 20,000 customers on a machine with two cores or more)",
    )
    train.add_argument(
        "--churn-label",
        metavar="PROPERTY",
        help="learn churn from this customer property (true/false) instead of "
        "deriving it from purchases",
    )
    train.set_defaults(handler=train_command, store_use="opens")

    score = commands.add_parser(
        "score",
        help="score customers with the last training's models (no retraining)",
        description="Score the given customers (new or changed since the last `train`) with "
        "the models that training saved, and write their scores back.",
    )
    score.add_argument("customer_ids", nargs="+", metavar="CUSTOMER_ID")
    score.set_defaults(handler=score_command, store_use="opens")


def train_command(args: argparse.Namespace, settings: Settings) -> int:
    from crm_graph.analytics.train import train

    try:
        report = on_store(
            settings,
            lambda store: train(
                store,
                as_of=args.as_of,
                horizon_days=args.horizon_days,
                seed=args.seed,
                churn_label=args.churn_label,
                model_dir=settings.model_dir,
                progress=lambda m: print(m, flush=True),
                processes=args.processes,
            ),
        )
    except ValueError as e:
        raise CommandError(str(e)) from e
    summary = report.as_json()
    for name, reason in report.skipped.items():
        print(f"skipped {name}: {reason}")
    print(
        f"scored {report.customers_scored:,} customers; model version {report.version}; "
        f"{report.total_seconds:.1f}s"
    )
    if args.report:
        args.report.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
        print(f"report: {args.report}")
    return EXIT_OK


def score_command(args: argparse.Namespace, settings: Settings) -> int:
    from crm_graph.analytics.score import NoModels, score_customers

    try:
        scored = on_store(
            settings,
            lambda store: score_customers(
                store, args.customer_ids, settings.model_dir / "latest.joblib"
            ),
        )
    except NoModels as e:
        raise CommandError(str(e)) from e
    missing = [c for c in args.customer_ids if c not in set(scored.index)]
    for customer_id, row in scored.iterrows():
        risk = row.get("mlChurnRisk")
        shown = "n/a" if risk is None or risk != risk else f"{risk:.3f}"
        print(f"{customer_id}: churn risk {shown}, RFM {row.get('mlRfmScore') or 'n/a'}")
    if missing:
        raise CommandError(f"no such customer(s): {', '.join(missing)}")
    return EXIT_OK


def utc_date(text: str) -> Any:
    import pandas as pd

    try:
        return pd.Timestamp(date.fromisoformat(text), tz="UTC")
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-06-30") from e


def end_of_utc_date(text: str) -> Any:
    """The instant a day ends (UTC): `train --as-of 1997-09-30` knows the orders of 30 September
    and is measured from 1 October on, as the default as_of is the end of the last day."""
    import pandas as pd

    return utc_date(text) + pd.Timedelta(days=1)
