"""API fixtures: the real ASGI app on the test's store, clients holding keys of each role."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.auth.keys import create_key
from api.auth.principal import Role
from graph.settings import StoreSettings
from graph.store import GraphStore


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
