"""The key cache (api/auth/cache.py): a key looked up once is not looked up again for `ttl`
seconds, and a revoke takes effect within `ttl` seconds of returning: in process with a clock
the test moves, and through a real `crm-graph serve` revoked by a real `crm-graph keys revoke`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.server import REPO, api_server, wait_ready
from crm_graph.api.app import create_app
from crm_graph.api.auth.cache import TTL_VARIABLE, KeyCache
from crm_graph.api.auth.keys import authenticate, create_key, revoke_key
from crm_graph.api.auth.principal import AuthError, Principal, Role
from crm_graph.graph.errors import ConfigurationError
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore
from tests.conftest import NEO4J_URI


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bearer(key: str) -> str:
    return f"Bearer {key}"


async def test_a_key_is_looked_up_once_per_ttl(store: GraphStore) -> None:
    # given a key and a cache of one second
    _, key = await create_key(store, Role.ANALYST, "dashboard")
    clock = Clock()
    cache = KeyCache(1.0, clock=clock)
    # when the key comes three times within the second
    before = store.round_trips
    first = await cache.authenticate(store, bearer(key))
    looked_up = store.round_trips
    clock.now += 0.5
    second = await cache.authenticate(store, bearer(key))
    clock.now += 0.49
    third = await cache.authenticate(store, bearer(key))
    # then only the first went to the store, and all three are the same principal
    assert looked_up > before
    assert store.round_trips == looked_up
    assert first == second == third
    assert first.role is Role.ANALYST
    assert (cache.hits, cache.misses) == (2, 1)
    # and once the second is over, the key is looked up again
    clock.now += 0.01
    assert await cache.authenticate(store, bearer(key)) == first
    assert store.round_trips > looked_up
    assert cache.misses == 2


async def test_a_revoke_takes_effect_within_the_ttl_counted_from_when_the_look_up_began(
    store: GraphStore,
) -> None:
    # given a cache whose look-up takes 0.4 s of its clock
    info, key = await create_key(store, Role.ADMIN, "ops")
    clock = Clock()

    async def slow_look_up(store: GraphStore, header: str | None) -> Principal:
        clock.now += 0.4
        return await authenticate(store, header)

    cache = KeyCache(1.0, clock=clock, look_up=slow_look_up)
    began = clock.now
    await cache.authenticate(store, bearer(key))
    # when the key is revoked
    assert await revoke_key(store, info.id)
    # then the cached answer may serve until one second after the look-up began
    clock.now = began + 0.99
    assert (await cache.authenticate(store, bearer(key))).key_id == info.id
    # and not a moment later, although less than a second has passed since it ended
    clock.now = began + 1.0
    with pytest.raises(AuthError, match="revoked"):
        await cache.authenticate(store, bearer(key))


async def test_refusals_are_never_kept(store: GraphStore) -> None:
    # given a cache of a minute and a revoked key
    info, key = await create_key(store, Role.PARTNER, "acme")
    await revoke_key(store, info.id)
    cache = KeyCache(60.0, clock=Clock())
    unknown = bearer("crm_AAAAAAAAAAAA_" + "A" * 43)
    for header in (bearer(key), unknown, bearer(key), unknown, None, "Basic abc"):
        before = store.round_trips
        # when it is sent again and again, with an unknown key, none, or a malformed one
        with pytest.raises(AuthError):
            await cache.authenticate(store, header)
        # then each well-formed one is looked up every time
        if header and header.startswith("Bearer crm_"):
            assert store.round_trips > before
    assert len(cache) == 0 and cache.hits == 0


async def test_a_ttl_of_zero_looks_every_request_up(store: GraphStore) -> None:
    _, key = await create_key(store, Role.ADMIN, "ops")
    cache = KeyCache(0)
    await cache.authenticate(store, bearer(key))
    before = store.round_trips
    await cache.authenticate(store, bearer(key))
    assert store.round_trips > before
    assert cache.hits == 0


async def test_the_cache_holds_at_most_max_entries(store: GraphStore) -> None:
    clock = Clock()
    cache = KeyCache(1.0, max_entries=2, clock=clock)
    keys = [(await create_key(store, Role.ANALYST, f"k{i}"))[1] for i in range(3)]
    for key in keys:
        await cache.authenticate(store, bearer(key))
    assert len(cache) == 2
    # the oldest went first: the newest two still answer from the cache
    before = store.round_trips
    for key in keys[1:]:
        await cache.authenticate(store, bearer(key))
    assert store.round_trips == before


@pytest.mark.parametrize(("value", "ttl"), [("", 1.0), ("0", 0.0), ("0.25", 0.25), (" 60 ", 60.0)])
def test_the_ttl_comes_from_the_environment(value: str, ttl: float) -> None:
    assert KeyCache.from_env({TTL_VARIABLE: value}).ttl == ttl


@pytest.mark.parametrize("value", ["soon", "-1", "61", "nan", "inf"])
def test_a_bad_ttl_is_refused_with_the_variable_named(value: str) -> None:
    with pytest.raises(ConfigurationError, match=TTL_VARIABLE):
        KeyCache.from_env({TTL_VARIABLE: value})


async def test_the_app_answers_a_known_key_without_a_store_round_trip(store: GraphStore) -> None:
    # given the app with a key cache of a minute, and a key it has seen once
    app = create_app(StoreSettings(), store=store, rate_limiter=None, key_cache=KeyCache(60.0))
    _, key = await create_key(store, Role.ANALYST, "bi")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        async def typename() -> int:
            response = await client.post(
                "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": bearer(key)}
            )
            assert response.json()["data"] == {"__typename": "Query"}
            return response.status_code

        assert await typename() == 200
        # when it comes again
        before = store.round_trips
        assert await typename() == 200
        # then the store was not asked
        assert store.round_trips == before


# -- through a real server ---------------------------------------------------------------------


def _store_option(
    store: GraphStore, embedded: StoreSettings, monkeypatch: pytest.MonkeyPatch
) -> tuple[str | None, Path]:
    """The `--store` and `--data-dir` that make `crm-graph` use the test's graph."""
    if store.dialect.name == "neo4j":
        assert NEO4J_URI
        return NEO4J_URI, embedded.data_dir
    monkeypatch.setenv("CRM_GRAPH_GRAPH", store.graph_name)  # type: ignore[attr-defined]
    return None, embedded.data_dir


def _cli(data_dir: Path, option: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    chosen = ["--store", option] if option else []
    return subprocess.run(
        [sys.executable, "-m", "crm_graph.api.cli", "--data-dir", str(data_dir), *chosen, *args],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=True, env=os.environ,
    )  # fmt: skip


@pytest.fixture
def ttl(monkeypatch: pytest.MonkeyPatch) -> Iterator[float]:
    monkeypatch.setenv(TTL_VARIABLE, "1")
    monkeypatch.setenv("CRM_GRAPH_RATE_LIMIT", "0")
    yield 1.0


async def test_a_revoke_from_another_process_takes_effect_on_a_server_within_the_ttl(
    store: GraphStore,
    embedded_settings: StoreSettings,
    ttl: float,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given `crm-graph serve` on the test's graph, with a key cache of one second
    option, data_dir = _store_option(store, embedded_settings, monkeypatch)
    info, key = await create_key(store, Role.ADMIN, "ops")
    with api_server(data_dir, tmp_path / "server.log", store=option) as server:
        await wait_ready(server)
        async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=30) as client:

            async def status() -> tuple[int, Any]:
                response = await client.post(
                    "/graphql", json={"query": "{ __typename }"},
                    headers={"Authorization": bearer(key)},
                )  # fmt: skip
                return response.status_code, response.json()

            # and the key in use, so that the server holds it
            assert (await status())[0] == 200
            # when `crm-graph keys revoke` runs in a process of its own
            await asyncio.to_thread(_cli, data_dir, option, "keys", "revoke", info.id)
            revoked = time.monotonic()
            # then once a second has passed since it returned, the server refuses the key
            await asyncio.sleep(max(0.0, revoked + ttl - time.monotonic()))
            code, body = await status()
            assert code == 401, body
            assert "revoked" in body["errors"][0]["message"]
            # and goes on refusing it
            assert (await status())[0] == 401
