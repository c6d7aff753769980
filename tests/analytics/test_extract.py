"""`read_tables` against pandas on the files the store was loaded from."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crm_graph.analytics import frames
from crm_graph.analytics.extract import read_tables
from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import load_folder
from crm_graph.loaders.synthetic import generate


def _canonical(folder: Path, merges_path: Path) -> dict[str, str]:
    merges = pd.read_csv(merges_path, dtype=str)
    return dict(zip(merges["merged_customer_id"], merges["customer_id"], strict=True))


@pytest.mark.parametrize("before", [None, "2024-03-01"])
async def test_tables_equal_the_loaded_files(
    store: GraphStore, tmp_path: Path, before: str | None
) -> None:
    # given a generated business in the store, read in small batches
    folder = tmp_path / "biz"
    generate(folder, 300, seed=5)
    report = await load_folder(store, folder, progress=False)
    assert report.rows_rejected == 0
    canonical = _canonical(folder, report.merges_path)
    cutoff = None if before is None else pd.Timestamp(before, tz="UTC")
    await store.write("MATCH (c:Customer) SET c.mlChurnRisk = 0.5")  # an earlier score
    # when the tables are read
    tables = await read_tables(store, before=cutoff, batch_size=64)
    # then the lines are the file's lines, with the customer they resolved to, the time of
    # their order and the category of their product
    lines = pd.read_csv(folder / "transactions.csv", dtype={"customer_id": str})
    lines["customer_id"] = lines["customer_id"].map(lambda c: canonical.get(c, c))
    lines["at"] = pd.to_datetime(lines["timestamp"], utc=True)
    if cutoff is not None:
        lines = lines[lines["at"] < cutoff]
    products = pd.read_csv(folder / "products.csv", dtype=str)
    category = dict(zip(products["product_id"], products["category"], strict=True))
    lines["category"] = lines["product_id"].map(category)
    key = ["transaction_id", "product_id"]
    expected = lines[list(frames.LINES)].sort_values(key).reset_index(drop=True)
    got = tables.lines.sort_values(key).reset_index(drop=True)
    assert list(got.columns) == list(frames.LINES)
    assert len(got) == len(expected) > 0
    for column in ("customer_id", "transaction_id", "product_id", "category", "quantity"):
        assert got[column].tolist() == expected[column].tolist(), column
    assert (got["at"] == expected["at"]).all()
    assert got["amount"].to_numpy() == pytest.approx(expected["amount"].to_numpy())
    # and the orders are the file's transactions, with their totals
    orders = lines.groupby("transaction_id").agg(customer_id=("customer_id", "first"),
                                                 total=("amount", "sum"))  # fmt: skip
    got_orders = tables.orders.set_index("transaction_id").sort_index()
    assert got_orders.index.tolist() == orders.index.tolist()
    assert got_orders["customer_id"].tolist() == orders["customer_id"].tolist()
    assert got_orders["total"].to_numpy() == pytest.approx(orders["total"].to_numpy())
    # and the contacts and ties are all there
    contacts = pd.read_csv(folder / "interactions.csv", dtype={"customer_id": str})
    contacts = contacts[pd.to_datetime(contacts["timestamp"], utc=True) < cutoff
                        ] if cutoff is not None else contacts  # fmt: skip
    assert sorted(tables.interactions["interaction_id"]) == sorted(contacts["interaction_id"])
    assert len(tables.ties) > 0
    # and the customers carry their properties, never personal fields
    people = pd.read_csv(folder / "customers.csv", dtype={"customer_id": str})
    alone = people[~people["customer_id"].isin(set(canonical) | set(canonical.values()))]
    alone = alone.set_index("customer_id")
    got_people = tables.customers.set_index("customer_id").loc[alone.index]
    assert tables.customers["customer_id"].is_unique
    assert len(tables.customers) == len(people) - len(canonical)
    assert got_people["country"].tolist() == alone["country"].tolist()
    assert got_people["loyalty_tier"].tolist() == alone["loyalty_tier"].tolist()
    assert got_people["age"].tolist() == alone["age"].tolist()
    signup = pd.to_datetime(alone["signup_date"], utc=True)
    assert (got_people["signup_at"] == signup).all()
    assert not {"name", "email", "phone", "city", "id", "mlChurnRisk"} & set(
        tables.customers.columns
    )


async def test_an_empty_graph_gives_empty_tables_with_the_contract_columns(
    store: GraphStore,
) -> None:
    tables = await read_tables(store)
    assert list(tables.lines.columns) == list(frames.LINES) and tables.lines.empty
    assert list(tables.orders.columns) == list(frames.ORDERS) and tables.orders.empty


async def test_extra_properties_come_in_the_order_of_their_names(store: GraphStore) -> None:
    # given customers whose extra properties were written in an order other than their names'
    await store.write("CREATE (:Customer {id: 'a', zone: 'n', plan: 'x', age: 3})")
    await store.write("CREATE (:Customer {id: 'b', plan: 'y', zone: 's', age: 5})")
    # when read, then the extra columns come sorted by name, whatever order the engine keeps
    # (a model's columns must not depend on it), after the contract's
    customers = (await read_tables(store)).customers
    extra = list(customers.columns[len(frames.CUSTOMERS) :])
    assert extra == ["age", "plan", "zone"]
    assert customers.loc["b", "zone"] == "s" and customers.loc["a", "age"] == 3
