"""The 360 view through the real ASGI app, checked against figures pandas computes independently
from the same input files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from graph.store import GraphStore
from loaders.load import load_folder
from loaders.synthetic import generate
from tests.conftest import Api

CUSTOMER_360 = """
query Customer360($id: ID!) {
  customer(id: $id) {
    id name email phone city country signupAt attributes
    totalSpend orderCount firstPurchaseAt lastPurchaseAt
    transactions(first: 5) { id at total channel lines { product { id category } quantity amount } }
    interactions(first: 100) { id type at sentiment }
    tickets: interactions(types: [TICKET], first: 100) { id type }
    productsBought(first: 100) { product { id } quantity orders spend }
    socialTies { type direction since weight customer { id name } }
    segments { id }
  }
}
"""


@pytest.fixture
async def business(store: GraphStore, tmp_path: Path) -> dict[str, Any]:
    """A generated business loaded into the store, and pandas frames of the same files with
    every source id mapped to the customer it resolved to."""
    folder = tmp_path / "biz"
    generate(folder, 400, seed=11)
    report = await load_folder(store, folder, progress=False)
    assert report.rows_rejected == 0
    merges = pd.read_csv(report.merges_path, dtype=str)
    canonical = dict(zip(merges["merged_customer_id"], merges["customer_id"], strict=True))
    lines = pd.read_csv(folder / "transactions.csv", dtype={"customer_id": str})
    lines["customer"] = lines["customer_id"].map(lambda c: canonical.get(c, c))
    lines["at"] = pd.to_datetime(lines["timestamp"], utc=True)
    interactions = pd.read_csv(folder / "interactions.csv", dtype={"customer_id": str})
    interactions["customer"] = interactions["customer_id"].map(lambda c: canonical.get(c, c))
    ties = pd.read_csv(folder / "social_ties.csv", dtype=str)
    ties["a"] = ties["source_customer_id"].map(lambda c: canonical.get(c, c))
    ties["b"] = ties["target_customer_id"].map(lambda c: canonical.get(c, c))
    return {"lines": lines, "interactions": interactions, "ties": ties, "merged": canonical}


def _busiest(lines: pd.DataFrame, merged: dict[str, str], n: int) -> list[str]:
    """Customers with the most orders, merged ones first (the hardest case)."""
    orders = lines.groupby("customer")["transaction_id"].nunique().sort_values(ascending=False)
    merged_people = [c for c in orders.index if c in set(merged.values())][:2]
    return (
        merged_people
        + [c for c in orders.index if c not in merged_people][: n - len(merged_people)]
    )


async def test_the_360_view_matches_pandas(business: dict[str, Any], admin: Api) -> None:
    lines, interactions, ties = business["lines"], business["interactions"], business["ties"]
    for customer_id in _busiest(lines, business["merged"], 5):
        view = (await admin.data(CUSTOMER_360, id=customer_id))["customer"]
        own = lines[lines["customer"] == customer_id]
        orders = own.groupby("transaction_id").agg(total=("amount", "sum"), at=("at", "min"))
        # totals and counts
        assert view["orderCount"] == len(orders)
        assert view["totalSpend"] == pytest.approx(own["amount"].sum(), abs=0.01)
        assert pd.Timestamp(view["firstPurchaseAt"]) == orders["at"].min()
        assert pd.Timestamp(view["lastPurchaseAt"]) == orders["at"].max()
        # the newest five orders, newest first, with their totals and lines
        newest = orders.sort_values("at", ascending=False).head(5)
        assert [t["total"] for t in view["transactions"]] == pytest.approx(
            list(newest["total"]), abs=0.01
        )
        for t in view["transactions"]:
            expected = own[own["transaction_id"] == t["id"]]
            assert sum(line["amount"] for line in t["lines"]) == pytest.approx(
                expected["amount"].sum(), abs=0.01
            )
        # contacts as a timeline, and filtered by type
        contacts = interactions[interactions["customer"] == customer_id]
        assert len(view["interactions"]) == len(contacts)
        stamps = [i["at"] for i in view["interactions"]]
        assert stamps == sorted(stamps, reverse=True)
        assert len(view["tickets"]) == int((contacts["type"] == "ticket").sum())
        # products bought with counts
        bought = own.groupby("product_id")["quantity"].sum()
        assert {p["product"]["id"]: p["quantity"] for p in view["productsBought"]} == (
            pytest.approx(bought.to_dict())
        )
        # social ties, both directions
        mine = ties[(ties["a"] == customer_id) | (ties["b"] == customer_id)]
        assert len(view["socialTies"]) == len(mine)
        assert {t["customer"]["id"] for t in view["socialTies"]} == (
            set(mine["a"]) | set(mine["b"])
        ) - {customer_id}


async def test_an_unknown_customer_is_null(store: GraphStore, admin: Api) -> None:
    assert (await admin.data('{ customer(id: "nobody") { id } }')) == {"customer": None}


FIGURES = "orderCount totalSpend firstPurchaseAt lastPurchaseAt"


async def test_order_figures_come_with_the_profile(
    business: dict[str, Any], store: GraphStore, admin: Api
) -> None:
    """Given customers with orders, when a 360 asks for the order figures (directly or through a
    fragment), then they cost no statement of their own and equal the figures the same
    customers get as the other end of a tie (fetched by their own statement)."""
    busiest = _busiest(business["lines"], business["merged"], 5)

    async def round_trips(query: str, **variables: Any) -> tuple[int, dict[str, Any]]:
        before = store.round_trips
        data = await admin.data(query, **variables)
        return store.round_trips - before, data

    await admin.data("{ __typename }")  # the key's first use is recorded once a minute
    key_only, _ = await round_trips("{ __typename }")
    plain, _ = await round_trips("query($id: ID!) { customer(id: $id) { id } }", id=busiest[0])
    direct, _ = await round_trips(
        f"query($id: ID!) {{ customer(id: $id) {{ id {FIGURES} }} }}", id=busiest[0]
    )
    spread, _ = await round_trips(
        "query($id: ID!) { customer(id: $id) { ...F } } "
        f"fragment F on Customer {{ {FIGURES} }}",
        id=busiest[0],
    )
    assert plain == direct == spread == key_only + 1
    compared = 0
    for customer_id in busiest:
        ties = (await admin.data(
            "query($id: ID!) { customer(id: $id) { socialTies { customer { id "
            f"{FIGURES} }} }} }} }}",
            id=customer_id,
        ))["customer"]["socialTies"]  # fmt: skip
        for tie in ties:
            other = tie["customer"]
            alone = await admin.data(
                f"query($id: ID!) {{ customer(id: $id) {{ id {FIGURES} }} }}", id=other["id"]
            )
            assert alone["customer"] == other
            compared += other["orderCount"] > 0
    assert compared > 0


VIEW_PARTS = (
    f"{FIGURES} transactions(first: 3) {{ id at total lines {{ quantity amount product {{ id }} }} "
    "} interactions(first: 4) { id type at } calls: interactions(types: [CALL]) { id } "
    "socialTies { type direction since weight customer { id } }"
)


async def test_the_parts_of_the_360_come_with_the_profile(
    business: dict[str, Any], store: GraphStore, admin: Api
) -> None:
    """Given customers with orders, contacts and ties, when a 360 asks for the order figures, a
    page of orders with their lines, a page of contacts and the ties, then it costs one
    statement (a second page of contacts under an alias, one more), and each part equals what
    the same customer gets as the other end of a tie, where every part is loaded by its own
    statement."""
    busiest = _busiest(business["lines"], business["merged"], 5)
    await admin.data("{ __typename }")  # the key's first use is recorded once a minute
    before = store.round_trips
    await admin.data("{ __typename }")
    key_only = store.round_trips - before

    async def round_trips(parts: str) -> int:
        before = store.round_trips
        await admin.data(f"query($id: ID!) {{ customer(id: $id) {{ id {parts} }} }}", id=busiest[0])
        return store.round_trips - before

    assert (
        await round_trips(VIEW_PARTS.replace("calls: interactions(types: [CALL]) { id } ", ""))
        == key_only + 1
    )
    assert await round_trips(VIEW_PARTS) == key_only + 2
    compared = 0
    for customer_id in busiest:
        view = (await admin.data(
            f"query($id: ID!) {{ customer(id: $id) {{ id {VIEW_PARTS} "
            f"socialTies {{ customer {{ id {VIEW_PARTS} }} }} }} }}",
            id=customer_id,
        ))["customer"]  # fmt: skip
        for tie in view["socialTies"]:
            other = tie["customer"]
            alone = await admin.data(
                f"query($id: ID!) {{ customer(id: $id) {{ id {VIEW_PARTS} }} }}", id=other["id"]
            )
            assert alone["customer"] == other
            compared += bool(other["transactions"] and other["interactions"])
    assert compared > 0
