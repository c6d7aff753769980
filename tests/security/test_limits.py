"""Abusive requests are refused with a documented status and code before the store is touched:
bodies that are not GraphQL requests, oversized bodies, JSON and filters nested too deep, filters
too wide, page sizes out of range. (`tests/api/test_access.py` covers selection depth, alias
floods and token counts.) "Before the store": the store's round-trip counter moves by the key
look-up only."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from graph.store import GraphStore
from tests.conftest import Api
from tests.security.conftest import assert_safe_answer


@pytest.fixture
async def warm_admin(admin: Api) -> Api:
    await admin.data("{ __typename }")  # the key's first use is recorded: not counted below
    return admin


async def post_raw(api: Api, body: bytes, **headers: str) -> httpx.Response:
    return await api.client.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {api.key}", "Content-Type": "application/json",
                 **headers},
    )  # fmt: skip


# -- bodies ------------------------------------------------------------------------------------

NOT_REQUESTS = [
    b"null", b"5", b'"{ __typename }"', b"true", b"{", b"",
    b'{"query": "{ __typename }", "variables": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"query": "query($w: CustomerFilter) { customers(where: $w) { nodes { id } } }", '
    b'"variables": {"w": ' + b'{"knows": ' * 5000 + b"{}" + b"}" * 5000 + b"}}",
]  # fmt: skip


@pytest.mark.parametrize("body", NOT_REQUESTS, ids=lambda b: b[:12].decode())
async def test_a_body_that_is_no_graphql_request_is_400(
    store: GraphStore, warm_admin: Api, body: bytes
) -> None:
    # given a body that is not a JSON object, or nests deeper than Python parses (under 64 KiB)
    assert len(body) < 64 * 1024
    before = store.round_trips
    # when it is posted, then it is refused as a bad request and nothing but the key look-up ran
    response = await post_raw(warm_admin, body)
    assert response.status_code == 400, response.text[:300]
    assert_safe_answer(response, body.decode())
    assert store.round_trips - before == 1


async def test_an_oversized_body_touches_nothing(store: GraphStore, warm_admin: Api) -> None:
    # given a body over 64 KiB, announced by Content-Length or streamed without it
    body = json.dumps({"query": "{ __typename }", "variables": {"pad": "x" * 70_000}}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    before = store.round_trips
    announced = await post_raw(warm_admin, body)
    after_announced = store.round_trips
    streamed = await warm_admin.client.post(
        "/graphql", content=chunks(),
        headers={"Authorization": f"Bearer {warm_admin.key}", "Content-Type": "application/json"},
    )  # fmt: skip
    # then both are 413; the announced one never reached the key look-up, the streamed one
    # went no further than it
    for response in (announced, streamed):
        assert response.status_code == 413
        assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert after_announced == before
    assert store.round_trips - after_announced == 1
