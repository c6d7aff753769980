"""API fixtures: the real ASGI app on the test's store, clients holding keys of each role."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import load_folder
from tests.helpers import write_csv


@pytest.fixture
async def shop(store: GraphStore, tmp_path: Path) -> None:
    """Twelve customers with deliberate ties in names and spend; a few orders and ties."""
    folder = tmp_path / "shop"
    names = ["Ann", "Bob", "Ann", "Cy", "Dee", "Bob", "Eve", "Ann", "Fay", "Gus", "Hal", "Ivy"]
    countries = ["GB", "FR", "GB", "DE", "GB", "FR", "US", "US", "GB", "DE", "FR", "GB"]
    write_csv(folder / "customers.csv", [
        {"customer_id": f"c{i:02d}", "name": n, "country": k, "email": f"{n.lower()}{i}@x.org",
         "phone": f"+4420794600{i:02d}", "signup_date": f"2023-01-{1 + i % 3:02d}"}
        for i, (n, k) in enumerate(zip(names, countries, strict=True))
    ])  # fmt: skip
    write_csv(folder / "products.csv", [
        {"product_id": "p1", "name": "Mug", "category": "Kitchen", "price": "5"},
        {"product_id": "p2", "name": "Lamp", "category": "Home", "price": "30"},
    ])  # fmt: skip
    spend = [10, 30, 10, 0, 30, 5, 0, 10, 30, 5, 0, 10]
    write_csv(folder / "transactions.csv", [
        {"transaction_id": f"t{i}", "customer_id": f"c{i:02d}", "timestamp": "2024-01-01",
         "product_id": "p2" if s >= 30 else "p1", "amount": str(s)}
        for i, s in enumerate(spend) if s
    ])  # fmt: skip
    write_csv(folder / "social_ties.csv", [
        {"source_customer_id": "c00", "target_customer_id": "c01"},
        {"source_customer_id": "c03", "target_customer_id": "c04", "type": "FAMILY"},
        {"source_customer_id": "c06", "target_customer_id": "c03"},
    ])  # fmt: skip
    await load_folder(store, folder, progress=False)
