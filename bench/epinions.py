"""`python -m bench.epinions --users 7000`: how long rules and recommendations take on the
Epinions ratings (one product per order over a catalogue of ~100k products, a dense trust
network), the shape the issue measured at 134 of 153 s of training.

The contract folder of `bench.real_data epinions` is read into the tables `train` works on (the
lines, orders and ties as `analytics.extract` gives them; no store: this measures the analytics,
not the read), then `analytics.train.rules_and_recommendations` runs as `train` runs it, as of
the day after the last rating with the back-test one 90-day horizon earlier. Prints the sizes,
each step's seconds (and the CPU seconds of rules and recommendations, which a busy machine
moves much less than the elapsed ones) and the recommendations' quality (hit rate@10 against
the popularity baseline), and writes them as JSON under `--work`.

Reads `/work/shared/datasets` (or `CRM_GRAPH_DATASETS`).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent


def tables(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """customers, orders, lines and ties of a contract folder, in `analytics.frames`' shapes."""
    customers = pd.read_csv(folder / "customers.csv", dtype=str)
    products = pd.read_csv(folder / "products.csv", dtype=str)
    rows = pd.read_csv(folder / "transactions.csv", dtype={"transaction_id": str,
                                                           "customer_id": str,
                                                           "product_id": str})  # fmt: skip
    at = pd.to_datetime(rows["timestamp"], utc=True)
    category = rows["product_id"].map(products.set_index("product_id")["category"])
    lines = pd.DataFrame({
        "customer_id": rows["customer_id"], "transaction_id": rows["transaction_id"], "at": at,
        "product_id": rows["product_id"], "category": category, "quantity": 1.0,
        "amount": rows["amount"].astype(float),
    })  # fmt: skip
    orders = pd.DataFrame({"customer_id": rows["customer_id"],
                           "transaction_id": rows["transaction_id"], "at": at,
                           "total": rows["amount"].astype(float)})  # fmt: skip
    ties_file = pd.read_csv(folder / "social_ties.csv", dtype=str)
    ties = pd.DataFrame({
        "source": ties_file["source_customer_id"], "target": ties_file["target_customer_id"],
        "type": ties_file.get("type", pd.Series("KNOWS", index=ties_file.index)), "weight": 1.0,
    })  # fmt: skip
    people = pd.DataFrame({"customer_id": customers["customer_id"],
                           "signup_at": pd.NaT, "country": None})  # fmt: skip
    return people.set_index("customer_id", drop=False), orders, lines, ties


def measure(users: int, work: Path, horizon_days: int = 90,
            similarity_history: int | str | None = "default") -> dict[str, Any]:  # fmt: skip
    from crm_graph.analytics import features, frames
    from crm_graph.analytics.segments import SegmentationModel
    from crm_graph.analytics.train import rules_and_recommendations
    from tests.conftest import DATASETS
    from tests.datasets import epinions_to_contract

    folder = work / f"epinions-{users}"
    if not (folder / "transactions.csv").exists():
        epinions_to_contract(DATASETS, folder, users=users)
    customers, orders, lines, ties = tables(folder)
    as_of = (lines["at"].max() + pd.Timedelta(days=1)).normalize()
    start = as_of - pd.Timedelta(days=horizon_days)
    contacts = frames.empty(frames.INTERACTIONS)
    clock = time.perf_counter()
    with features.reusing_customer_features():
        now = features.customer_features(customers, orders, lines, contacts, as_of)
        at_start = features.customer_features(customers, orders, lines, contacts, start)
    seconds = {"features": time.perf_counter() - clock}
    clock = time.perf_counter()
    model = SegmentationModel(random_state=0)
    segments = model.fit_predict(now).map(model.segment_names())
    seconds["segments"] = time.perf_counter() - clock
    clock, cpu = time.perf_counter(), time.process_time()
    params = {} if similarity_history == "default" else {"similarity_history": similarity_history}
    outcome = rules_and_recommendations(lines, ties, customers.index, as_of, horizon_days,
                                        segments, at_start, 0, recommender=params)  # fmt: skip
    seconds["rules and recommendations"] = time.perf_counter() - clock
    cpu_seconds = time.process_time() - cpu
    seconds.update(outcome.seconds)
    return {
        "users": users,
        "similarity_history": similarity_history,
        "customers": len(customers),
        "orders": int(lines["transaction_id"].nunique()),
        "products": int(lines["product_id"].nunique()),
        "ties": len(ties),
        "as_of": str(as_of.date()),
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "cpu_seconds_rules_and_recommendations": round(cpu_seconds, 2),
        "rules": outcome.rules or outcome.rules_skipped,
        "recommendations": outcome.recommendations,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.epinions", description=__doc__)
    parser.add_argument("--users", type=int, default=7000)
    parser.add_argument("--work", type=Path, default=HERE / "results")
    parser.add_argument(
        "--similarity-history", default="default",
        help="the recommender's similarity_history: a number, 'all' (None: every item of every "
        "history), or 'default' (the recommender's own)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    history = args.similarity_history
    history = None if history == "all" else history if history == "default" else int(history)
    result = measure(args.users, args.work, similarity_history=history)
    print(json.dumps(result, indent=2))
    out = args.work / f"epinions-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"results: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
