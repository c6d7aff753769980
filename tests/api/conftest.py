"""API fixtures: the real ASGI app on the test's store, clients holding keys of each role."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.auth.keys import create_key
from api.auth.principal import Role
from graph.settings import StoreSettings
from graph.store import GraphStore
from loaders.load import load_folder
from tests.helpers import write_csv


class Api:
    """Posts GraphQL documents to the app with one role's key."""

    def __init__(self, client: httpx.AsyncClient, key: str | None) -> None:
        self.client = client
        self.key = key

    async def post(self, query: str, variables: dict[str, Any] | None = None,
                   key: str | None = None) -> httpx.Response:  # fmt: skip
        headers = {"Authorization": f"Bearer {key or self.key}"} if (key or self.key) else {}
        return await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        """The `data` of a request that must succeed without errors."""
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def errors(self, query: str, **variables: Any) -> list[dict[str, Any]]:
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body.get("errors"), body
        return body["errors"]


@pytest.fixture
async def api_for(store: GraphStore) -> AsyncIterator[Callable[[Role], Any]]:
    """`await api_for(Role.ADMIN)`: an `Api` on the real app with a fresh key of that role."""
    app = create_app(StoreSettings(), store=store, rate_limiter=None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        async def make(role: Role) -> Api:
            _, key = await create_key(store, role, f"test {role.value}")
            return Api(client, key)

        yield make


@pytest.fixture
async def admin(api_for: Callable[[Role], Any]) -> Api:
    return await api_for(Role.ADMIN)


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
