"""What `load` says it did per file: rows new, updated, or repeating an id met earlier in the
file; and an order line naming a product that is not loaded is rejected, never made up into a
nameless Product (issue 16). Real stores, both engines."""

from __future__ import annotations

from pathlib import Path

from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import LoadReport, load_folder
from tests.helpers import read_rejects, write_csv


def counts(report: LoadReport) -> dict[str, tuple[int, int, int, int]]:
    return {f.file: (f.loaded, f.new, f.updated, f.duplicates) for f in report.files}


async def test_rows_are_counted_as_new_updated_or_duplicates(
    store: GraphStore, tmp_path: Path
) -> None:
    # given a folder with a customer id, a product id, an interaction id and a tie twice
    folder = tmp_path / "in"
    write_csv(folder / "customers.csv", [
        {"customer_id": "c1", "name": "Ada"}, {"customer_id": "c2", "name": "Bo"},
        {"customer_id": "c1", "name": "Ada L."},
    ])  # fmt: skip
    write_csv(folder / "products.csv", [
        {"product_id": "p1", "name": "Mug"}, {"product_id": "p1", "name": "Big mug"},
    ])  # fmt: skip
    write_csv(folder / "transactions.csv", [
        {"transaction_id": "t1", "customer_id": "c1", "timestamp": "2024-01-01",
         "product_id": "p1", "amount": "3"},
        {"transaction_id": "t1", "customer_id": "c1", "timestamp": "2024-01-01", "amount": "4"},
        {"transaction_id": "t2", "customer_id": "c2", "timestamp": "2024-01-02", "amount": "1"},
    ])  # fmt: skip
    write_csv(folder / "interactions.csv", [
        {"interaction_id": "i1", "customer_id": "c1", "timestamp": "2024-01-01",
         "type": "call"},
        {"interaction_id": "i1", "customer_id": "c1", "timestamp": "2024-01-02",
         "type": "email"},
    ])  # fmt: skip
    write_csv(folder / "social_ties.csv", [
        {"source_customer_id": "c1", "target_customer_id": "c2", "type": "KNOWS"},
        {"source_customer_id": "c2", "target_customer_id": "c1", "type": "KNOWS"},
        {"source_customer_id": "c1", "target_customer_id": "c2", "type": "KNOWS"},
        {"source_customer_id": "c1", "target_customer_id": "c2", "type": "FAMILY"},
    ])  # fmt: skip
    # when it is loaded into an empty store
    first = await load_folder(store, folder, progress=False, batch_size=2)
    # then the first row of each id is new, a repeat a duplicate; an order's lines are its own
    assert counts(first) == {
        "customers.csv": (3, 2, 0, 1),
        "products.csv": (2, 1, 0, 1),
        "transactions.csv": (3, 3, 0, 0),
        "interactions.csv": (2, 1, 0, 1),
        "social_ties.csv": (4, 3, 0, 1),
    }
    by_file = {f.file: f for f in first.files}
    assert by_file["customers.csv"].duplicate_ids == ["c1"]
    assert by_file["social_ties.csv"].duplicate_ids == ["c1 KNOWS c2"]
    # and when loaded again, every first row updates what is stored
    again = await load_folder(store, folder, progress=False)
    assert counts(again) == {
        "customers.csv": (3, 0, 2, 1),
        "products.csv": (2, 0, 1, 1),
        "transactions.csv": (3, 0, 3, 0),
        "interactions.csv": (2, 0, 1, 1),
        "social_ties.csv": (4, 0, 3, 1),
    }
    for report in (first, again):
        for f in report.files:
            assert f.loaded == f.new + f.updated + f.duplicates


async def test_a_line_naming_an_unknown_product_is_rejected(
    store: GraphStore, tmp_path: Path
) -> None:
    # given an order with a line naming a loaded product and one naming a product not loaded
    folder = tmp_path / "in"
    write_csv(folder / "customers.csv", [{"customer_id": "c1"}])
    write_csv(folder / "products.csv", [{"product_id": "p1", "name": "Mug"}])
    write_csv(folder / "transactions.csv", [
        {"transaction_id": "t1", "customer_id": "c1", "timestamp": "2024-01-01",
         "product_id": "p1", "amount": "3"},
        {"transaction_id": "t1", "customer_id": "c1", "timestamp": "2024-01-01",
         "product_id": "p404", "amount": "4"},
        {"transaction_id": "t2", "customer_id": "c1", "timestamp": "2024-01-02",
         "product_id": "p404", "amount": "5"},
    ])  # fmt: skip
    report = await load_folder(store, folder, progress=False)
    # then that line is rejected with the reason, like an unknown customer's
    [tx] = [f for f in report.files if f.file == "transactions.csv"]
    assert (tx.read, tx.loaded, tx.rejected) == (3, 1, 2)
    rejects = [r for r in read_rejects(report.rejects_path) if r["file"] == "transactions.csv"]
    assert [(r["line"], r["column"], r["value"]) for r in rejects] == [
        ("3", "product_id", "p404"), ("4", "product_id", "p404"),
    ]  # fmt: skip
    assert "names product 'p404', which is not loaded" in rejects[0]["reason"]
    # and no Product was made up, no order of only unknown products stored, the total is right
    products = await store.read("MATCH (p:Product) RETURN p.id AS id")
    assert products == [{"id": "p1"}]
    orders = await store.read("MATCH (t:Transaction) RETURN t.id AS id, t.total AS total")
    assert orders == [{"id": "t1", "total": 3.0}]
