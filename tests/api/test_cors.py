"""CORS through the real app: the origins of `CRM_GRAPH_CORS_ORIGINS`, checked, and a preflight
answered before authentication. (A real browser calling from another origin:
tests/browser/test_cors_browser.py.)"""

from __future__ import annotations

import httpx
import pytest

from crm_graph.api.app import create_app
from crm_graph.api.cors import cors_origins
from crm_graph.graph.errors import ConfigurationError
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore
from tests.conftest import Api

APP_ORIGIN = "http://127.0.0.1:5173"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type,x-request-id",
}


def _client(store: GraphStore, origins: tuple[str, ...]) -> httpx.AsyncClient:
    app = create_app(StoreSettings(), store=store, rate_limiter=None, cors=origins)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_a_preflight_from_a_listed_origin_is_answered_without_a_key(
    store: GraphStore, admin: Api
) -> None:
    async with _client(store, (APP_ORIGIN,)) as client:
        # when a browser asks before a POST with a key, from a listed origin
        answer = await client.options("/graphql", headers={"Origin": APP_ORIGIN, **PREFLIGHT})
        # then it may: the origin, the method and the three headers are allowed
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == APP_ORIGIN
        allowed = answer.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "x-request-id"} <= set(allowed.split(", "))
        assert "POST" in answer.headers["access-control-allow-methods"]
        assert "access-control-allow-credentials" not in answer.headers
        # and the request itself is answered with the origin and the headers a page may read
        response = await client.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Origin": APP_ORIGIN, "Authorization": f"Bearer {admin.key}"},
        )
        assert response.status_code == 200 and response.json()["data"]["__typename"] == "Query"
        assert response.headers["access-control-allow-origin"] == APP_ORIGIN
        exposed = response.headers["access-control-expose-headers"].lower()
        assert "x-request-id" in exposed and "x-ratelimit-remaining" in exposed
        # a refusal (no key) carries it too, so the page can read why
        refused = await client.post("/graphql", json={}, headers={"Origin": APP_ORIGIN})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == APP_ORIGIN


async def test_an_origin_not_listed_gets_no_permission(store: GraphStore, admin: Api) -> None:
    async with _client(store, (APP_ORIGIN,)) as client:
        other = "http://127.0.0.1:5174"
        answer = await client.options("/graphql", headers={"Origin": other, **PREFLIGHT})
        assert answer.status_code == 400
        assert "access-control-allow-origin" not in answer.headers
        response = await client.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Origin": other, "Authorization": f"Bearer {admin.key}"},
        )
        assert "access-control-allow-origin" not in response.headers


async def test_no_origin_is_allowed_by_default(store: GraphStore) -> None:
    async with _client(store, cors_origins({})) as client:
        answer = await client.options("/graphql", headers={"Origin": APP_ORIGIN, **PREFLIGHT})
        assert "access-control-allow-origin" not in answer.headers
        assert answer.status_code == 401  # as any request without a key


def test_origins_are_read_and_checked() -> None:
    given = " https://App.Example.com , http://127.0.0.1:5173,http://[::1]:8080,"
    read = cors_origins({"CRM_GRAPH_CORS_ORIGINS": given + "https://app.example.com"})
    assert read == ("https://app.example.com", "http://127.0.0.1:5173", "http://[::1]:8080")
    assert cors_origins({"CRM_GRAPH_CORS_ORIGINS": "  "}) == ()


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("*", "wildcards"),
        ("https://*.example.com", "wildcards"),
        ("https://app.example.com/", "not an origin"),
        ("https://app.example.com/graphql", "not an origin"),
        ("app.example.com", "not an origin"),
        ("ftp://app.example.com", "not an origin"),
        ("http://127.0.0.1:99999", "out of range"),
        ("https://a.example.com,,https://b.example.com", "entry 2 is empty"),
    ],
)
def test_a_malformed_origin_is_refused_naming_the_setting(value: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match="CRM_GRAPH_CORS_ORIGINS") as refused:
        cors_origins({"CRM_GRAPH_CORS_ORIGINS": value})
    assert complaint in str(refused.value)
