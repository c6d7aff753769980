"""The real UCI Online Retail sample, converted to the contract and loaded."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import load_folder
from tests.conftest import DATASETS
from tests.datasets import online_retail_to_contract, read_online_retail
from tests.helpers import read_rejects


@pytest.fixture(scope="module")
def retail() -> pd.DataFrame:
    if not DATASETS.is_dir():
        pytest.skip(f"the shared datasets folder {DATASETS} is absent")
    return read_online_retail(DATASETS)


async def test_online_retail_loads_one_customer_per_id_and_one_order_per_invoice(
    store: GraphStore, tmp_path: Path, retail: pd.DataFrame
) -> None:
    # given the sample in the contract's shape
    folder = online_retail_to_contract(retail, tmp_path / "retail")
    # when it is loaded
    report = await load_folder(store, folder, rejects_path=tmp_path / "rejects.csv", progress=False)
    with_customer = retail[retail["customer_id"] != ""]
    # then: one Customer per CustomerID, one Transaction per invoice that has a customer
    rows = await store.read("MATCH (c:Customer) RETURN count(c) AS n")
    assert rows[0]["n"] == with_customer["customer_id"].nunique()
    rows = await store.read("MATCH (:Customer)-[:PLACED]->(t:Transaction) RETURN count(t) AS n")
    assert rows[0]["n"] == with_customer["InvoiceNo"].nunique()
    # and every line without a customer, and only those, is rejected
    lines = next(f for f in report.files if f.file == "transactions.csv")
    assert lines.read == len(retail)
    assert lines.rejected == int((retail["customer_id"] == "").sum())
    assert lines.loaded == len(with_customer)
    rejects = [r for r in read_rejects(tmp_path / "rejects.csv") if r["file"] == "transactions.csv"]
    assert {(r["column"], r["reason"]) for r in rejects} == {
        ("customer_id", "is required and empty")
    }
    # and each customer's spend equals what pandas computes from the same lines
    expected = (
        (with_customer["Quantity"] * with_customer["UnitPrice"])
        .groupby(with_customer["customer_id"])
        .sum()
    )
    stored = await store.read(
        "MATCH (c:Customer)-[:PLACED]->(t:Transaction) RETURN c.id AS id, sum(t.total) AS spend"
    )
    spend = pd.Series({r["id"]: r["spend"] for r in stored}).sort_index()
    pd.testing.assert_series_equal(
        spend, expected.sort_index(), check_names=False, check_index_type=False, atol=1e-6
    )
