"""Converters from the shared real datasets to the data contract (test helpers, not product)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

RETAIL_XLSX = Path("online-retail-sample") / "online_retail_sample.xlsx"


def read_online_retail(datasets: Path) -> pd.DataFrame:
    frame = pd.read_excel(datasets / RETAIL_XLSX, dtype={"InvoiceNo": str, "StockCode": str})
    frame["customer_id"] = frame["CustomerID"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    return frame


def online_retail_to_contract(frame: pd.DataFrame, out: Path) -> Path:
    """UCI Online Retail line items → customers.csv, products.csv, transactions.csv."""
    out.mkdir(parents=True, exist_ok=True)
    known = frame[frame["customer_id"] != ""]
    customers = (
        known.groupby("customer_id", sort=True)["Country"]
        .first()
        .reset_index()
        .rename(columns={"Country": "country"})
    )
    customers["source_system"] = "online-retail"
    customers.to_csv(out / "customers.csv", index=False)
    products = (
        frame.groupby("StockCode", sort=True)["Description"]
        .first()
        .reset_index()
        .rename(columns={"StockCode": "product_id", "Description": "name"})
    )
    products.to_csv(out / "products.csv", index=False)
    lines = pd.DataFrame(
        {
            "transaction_id": frame["InvoiceNo"],
            "customer_id": frame["customer_id"],
            "timestamp": frame["InvoiceDate"].map(lambda t: t.isoformat()),
            "product_id": frame["StockCode"],
            "quantity": frame["Quantity"],
            "unit_price": frame["UnitPrice"],
        }
    )
    lines.to_csv(out / "transactions.csv", index=False)
    return out


MLC_CHURN_CSV = Path("mlc-churn") / "mlc_churn.csv"


def mlc_churn_to_contract(datasets: Path, out: Path) -> Path:
    """The MLC++ telecom accounts → customers.csv alone: an id per row (`A0001`...), then the
    20 attribute columns and the `churn` flag (yes/no) as they are. No orders, no contacts."""
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.read_csv(datasets / MLC_CHURN_CSV, dtype=str, keep_default_na=False)
    frame.insert(0, "customer_id", [f"A{i:04d}" for i in range(1, len(frame) + 1)])
    frame.to_csv(out / "customers.csv", index=False)
    return out


def cdnow_to_contract(orders: pd.DataFrame, out: Path) -> Path:
    """CDNOW purchases (`tests.analytics.cdnow.cdnow_orders`) → customers.csv (ids only: no
    signup date, no attribute) and transactions.csv (one line per purchase, its dollar value
    as the amount, no product)."""
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"customer_id": sorted(orders["customer_id"].unique())}).to_csv(
        out / "customers.csv", index=False
    )
    pd.DataFrame(
        {
            "transaction_id": orders["transaction_id"],
            "customer_id": orders["customer_id"],
            "timestamp": orders["at"].dt.strftime("%Y-%m-%d"),
            "amount": orders["total"].map(lambda v: f"{v:.2f}"),
        }
    ).to_csv(out / "transactions.csv", index=False)
    return out


EPINIONS = Path("epinions")
SPREAD_DAYS = 730
"""The days over which each Epinions user's ratings are spread (the data have no dates)."""


def epinions_to_contract(datasets: Path, out: Path, *, users: int, seed: int = 0) -> Path:
    """The Epinions ratings and trust network → a contract folder, on a deterministic sample.

    `users` of the users who both rated and are in the trust network are drawn (seeded), with
    every rating of theirs and the trust ties among them. Each rating is an order of one
    product (its category named from the catalogue). The data have no dates: each user's
    ratings are spread evenly, in the file's order, over the `SPREAD_DAYS` from the 1st of
    January 2010, so that the product ("an order per rating") has a past and a future to learn
    and test on, with every user active over the same period (as customers of a shop are).
    """
    from scipy.io import loadmat

    out.mkdir(parents=True, exist_ok=True)
    ratings = pd.DataFrame(
        loadmat(datasets / EPINIONS / "rating.mat")["rating"],
        columns=["user", "product", "category", "rating"],
    )
    trust = pd.DataFrame(
        loadmat(datasets / EPINIONS / "trustnetwork.mat")["trustnetwork"],
        columns=["source", "target"],
    )
    catalogue = {}
    for line in (datasets / EPINIONS / "catalog_epinion.txt").read_text().splitlines():
        number, _, name = line.strip().partition(" ")
        if number.isdigit():
            catalogue[int(number)] = name.strip()
    both = sorted(set(ratings["user"]) & (set(trust["source"]) | set(trust["target"])))
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(both, size=min(users, len(both)), replace=False).tolist())
    ratings = ratings[ratings["user"].isin(chosen)].reset_index(drop=True)
    trust = trust[trust["source"].isin(chosen) & trust["target"].isin(chosen)]
    trust = trust[trust["source"] != trust["target"]].drop_duplicates()
    user_id = {u: f"U{u}" for u in chosen}
    pd.DataFrame({"customer_id": [user_id[u] for u in sorted(chosen)]}).to_csv(
        out / "customers.csv", index=False
    )
    products = ratings.drop_duplicates("product").sort_values("product")
    pd.DataFrame(
        {
            "product_id": products["product"].map(lambda p: f"P{p}"),
            "category": products["category"].map(lambda c: catalogue.get(int(c), f"c{c}")),
        }
    ).to_csv(out / "products.csv", index=False)
    # each user's ratings spread evenly over the same two years: one a day from one date
    # left the heavy raters alone active at the end (as_of came 14 years after most had stopped)
    rank = ratings.groupby("user").cumcount()
    count = ratings.groupby("user")["user"].transform("size")
    day = (rank * SPREAD_DAYS // count).astype(int)
    stamp = pd.Timestamp("2010-01-01") + pd.to_timedelta(day, unit="D")
    pd.DataFrame(
        {
            "transaction_id": [f"R{i}" for i in range(len(ratings))],
            "customer_id": ratings["user"].map(user_id),
            "timestamp": stamp.dt.strftime("%Y-%m-%d"),
            "product_id": ratings["product"].map(lambda p: f"P{p}"),
            "amount": ratings["rating"].astype(float),
        }
    ).to_csv(out / "transactions.csv", index=False)
    pd.DataFrame(
        {
            "source_customer_id": trust["source"].map(user_id),
            "target_customer_id": trust["target"].map(user_id),
        }
    ).to_csv(out / "social_ties.csv", index=False)
    return out
