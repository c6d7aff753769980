"""Read a folder written by `loaders.synthetic.generate` into the analytics tables of
`analytics.frames`, as the loader would have stored them.

Identity resolution is replayed from the ground truth: a duplicate record's orders, interactions
and ties belong to the original customer (`ground_truth.duplicate_of`), the duplicate row itself
is not a customer, ties that become a customer's tie to themselves are dropped, and a repeated
tie of one type between the same two customers is kept once (the last one read). An order's time
is its earliest line and its total the sum of its lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from crm_graph.analytics.frames import CUSTOMERS, INTERACTIONS, LINES, ORDERS, TIES
from crm_graph.loaders.synthetic import generate

EXTRA_CUSTOMER_COLUMNS = ("age", "loyalty_tier")
"""The customer properties kept beside the contract columns; like `analytics.extract`, no
personal fields (name, email, phone, city)."""


@dataclass(frozen=True)
class SyntheticFrames:
    """The analytics tables of one generated folder, plus the generator's ground truth."""

    customers: pd.DataFrame
    orders: pd.DataFrame
    lines: pd.DataFrame
    interactions: pd.DataFrame
    ties: pd.DataFrame
    truth: pd.DataFrame
    """One row per customer (originals only), indexed by customer_id: community, churned_at
    (UTC, NaT if never), influence."""


def generated_frames(
    folder: Path, customers: int, seed: int, *, influence_strength: float = 1.0
) -> SyntheticFrames:
    """Generate a synthetic business into `folder` and read it back."""
    generate(folder, customers, seed, influence_strength=influence_strength)
    return read_frames(folder)


def read_frames(folder: Path) -> SyntheticFrames:
    """The tables of `folder`, ids mapped through the identity-resolution duplicates."""
    folder = Path(folder)

    def table(name: str) -> pd.DataFrame:
        return pd.read_csv(folder / name, dtype=str, keep_default_na=False)

    truth = table("ground_truth.csv")
    person = dict(zip(truth.customer_id, truth.duplicate_of.where(truth.duplicate_of != "",
                                                                 truth.customer_id),
                      strict=True))  # fmt: skip
    originals = truth[truth.duplicate_of == ""]

    raw = table("customers.csv")
    raw = raw[raw.customer_id.isin(originals.customer_id)]
    customers = pd.DataFrame({
        "customer_id": raw.customer_id.to_numpy(),
        "signup_at": _utc(raw.signup_date).to_numpy(),
        "country": raw.country.to_numpy(),
        "age": pd.to_numeric(raw.age.replace("", None)).to_numpy(),
        "loyalty_tier": raw.loyalty_tier.to_numpy(),
    })  # fmt: skip
    assert tuple(customers.columns[: len(CUSTOMERS)]) == CUSTOMERS

    products = table("products.csv").set_index("product_id")
    tx = table("transactions.csv")
    tx_customer = tx.customer_id.map(person)
    tx_at = _utc(tx.timestamp)
    amount = pd.to_numeric(tx.amount)
    line_rows = pd.DataFrame({
        "customer_id": tx_customer, "transaction_id": tx.transaction_id, "at": tx_at,
        "product_id": tx.product_id, "category": tx.product_id.map(products.category),
        "quantity": pd.to_numeric(tx.quantity), "amount": amount,
    })  # fmt: skip
    orders = (line_rows.groupby("transaction_id", sort=True)
              .agg(customer_id=("customer_id", "first"), at=("at", "min"),
                   total=("amount", "sum"))
              .reset_index()[list(ORDERS)])  # fmt: skip
    lines = line_rows.drop(columns="at").merge(
        orders[["transaction_id", "at"]], on="transaction_id", how="left"
    )[list(LINES)]

    raw_i = table("interactions.csv")
    interactions = pd.DataFrame({
        "customer_id": raw_i.customer_id.map(person), "interaction_id": raw_i.interaction_id,
        "at": _utc(raw_i.timestamp), "type": raw_i.type,
        "channel": raw_i.channel.replace("", None),
        "sentiment": pd.to_numeric(raw_i.sentiment.replace("", None)),
        "satisfaction": pd.to_numeric(raw_i.satisfaction.replace("", None)),
    })[list(INTERACTIONS)]  # fmt: skip

    raw_t = table("social_ties.csv")
    ties = pd.DataFrame({
        "source": raw_t.source_customer_id.map(person),
        "target": raw_t.target_customer_id.map(person), "type": raw_t.type,
        "weight": pd.to_numeric(raw_t.weight.replace("", None)),
    })  # fmt: skip
    ties = ties[ties.source != ties.target]
    ties = ties.drop_duplicates(["type", "source", "target"], keep="last").reset_index(drop=True)
    assert tuple(ties.columns) == TIES

    truth_frame = pd.DataFrame({
        "community": pd.to_numeric(originals.community).to_numpy(),
        "churned_at": _utc(originals.churned_at).to_numpy(),
        "influence": pd.to_numeric(originals.influence).to_numpy(),
    }, index=pd.Index(originals.customer_id.to_numpy(), name="customer_id"))  # fmt: skip
    return SyntheticFrames(
        customers=customers,
        orders=orders,
        lines=lines,
        interactions=interactions,
        ties=ties,
        truth=truth_frame,
    )


def _utc(text: pd.Series) -> pd.Series:
    """ISO dates or instants as `datetime64[ns, UTC]`; empty text becomes NaT."""
    parsed = pd.to_datetime(text.replace("", None), utc=True, format="ISO8601")
    return parsed.astype("datetime64[ns, UTC]")
