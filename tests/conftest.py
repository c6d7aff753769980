"""Shared fixtures: a real embedded FalkorDB started by the tests (one server for the session,
one graph per test), and Neo4j when NEO4J_URI is set."""

from __future__ import annotations

import dataclasses
import itertools
import os
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import settings

from crm_graph.api.app import create_app
from crm_graph.api.auth.keys import create_key
from crm_graph.api.auth.principal import Role
from crm_graph.api.settings import Settings
from crm_graph.graph.embedded import STATE_FILE, EmbeddedServer
from crm_graph.graph.falkordb_store import FalkorStore
from crm_graph.graph.settings import StoreSettings, parse_store
from crm_graph.graph.store import GraphStore, open_store

# Property tests draw the same cases on every run of `make test` (a red run is a regression,
# reproducible, not a new draw); `make fuzz` draws new ones to look for bugs.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATASETS = Path(os.environ.get("CRM_GRAPH_DATASETS", SHARED / "datasets"))
NEO4J_URI = os.environ.get("NEO4J_URI")
_graph_names = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def _stop_stray_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """At the end of the session, stop every embedded server still running on a data directory
    under the session's temporary folder: a test that fails between opening a store and closing
    it must not leave its FalkorDB behind. Set up first, so torn down last."""
    yield
    base = tmp_path_factory.getbasetemp()
    for state in sorted(base.rglob(STATE_FILE)):
        if EmbeddedServer(state.parent).stop():
            warnings.warn(f"stopped a server left running in {state.parent}", stacklevel=1)


@pytest.fixture(scope="session")
def embedded_settings(tmp_path_factory: pytest.TempPathFactory) -> StoreSettings:
    return parse_store("embedded", data_dir=tmp_path_factory.mktemp("store"), env={})


@pytest.fixture(scope="session")
async def embedded_server(embedded_settings: StoreSettings) -> AsyncIterator[FalkorStore]:
    """Holds the session's embedded server open; tests open their own handles on it."""
    store = await open_store(embedded_settings, bootstrap=False)
    assert isinstance(store, FalkorStore)
    yield store
    await store.close()


NO_NEO4J = "no NEO4J_URI"
"""The Neo4j variants' skip reason, short: `pytest_terminal_summary` says the rest once."""


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if NEO4J_URI:
        where = NEO4J_URI.rsplit("@", 1)[-1]  # not the credentials
        terminalreporter.write_line(f"neo4j: the Neo4j variants ran against {where}")
    elif terminalreporter.stats.get("skipped"):
        terminalreporter.write_line(
            "neo4j: NEO4J_URI is not set, so the Neo4j variants were skipped; `make test-all` "
            "starts ../shared/neo4j and runs them (or set NEO4J_URI to a Neo4j 5 server)"
        )


def _engines() -> Iterator[object]:
    yield pytest.param("falkordb", id="falkordb")
    yield pytest.param(
        "neo4j",
        id="neo4j",
        marks=pytest.mark.neo4j,
    )


@pytest.fixture(params=list(_engines()))
async def store(
    request: pytest.FixtureRequest, embedded_server: FalkorStore, embedded_settings: StoreSettings
) -> AsyncIterator[GraphStore]:
    """An empty, bootstrapped graph on each engine. On Neo4j (one database for the session),
    what the test before left is deleted; the constraints and indexes stay, and `bootstrap`
    creates only what is missing (one read when nothing is), instead of 14 schema transactions."""
    if request.param == "neo4j":
        if not NEO4J_URI:
            pytest.skip(NO_NEO4J)
        opened = await open_store(parse_store(NEO4J_URI), bootstrap=False)
        await opened.delete_graph()  # type: ignore[attr-defined]
        await opened.bootstrap()
    else:
        name = f"test-{os.getpid()}-{next(_graph_names)}"
        settings = StoreSettings(
            kind="embedded", data_dir=embedded_settings.data_dir, graph_name=name
        )
        opened = await open_store(settings)
    yield opened
    if request.param != "neo4j":
        await opened.delete_graph()  # type: ignore[attr-defined]
    await opened.close()


@pytest.fixture
def datasets() -> Path:
    if not DATASETS.is_dir():
        pytest.skip(f"the shared datasets folder {DATASETS} is absent")
    return DATASETS


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


TEST_STATEMENT_TIMEOUT = 120.0
"""Seconds a statement of a test's GraphQL request may run in the store (see `api_for`)."""


@pytest.fixture
async def api_for(store: GraphStore) -> AsyncIterator[Callable[[Role], Any]]:
    """`await api_for(Role.ADMIN)`: an `Api` on the real app with a fresh key of that role.

    Without the key cache (as with CRM_GRAPH_KEY_CACHE_SECONDS=0): every request looks its key
    up, so the tests that count store round trips count the same whatever the clock does. The
    cache has its own tests (tests/api/test_key_cache.py).

    With a statement timeout of `TEST_STATEMENT_TIMEOUT` instead of the default 5 s: the
    timeout still applies to every statement, but a machine shared by several suites (load
    average 30 on 2 cores) took more than 5 s for a cold 360 statement on Neo4j, and the
    README example test failed with TIMEOUT. The timeout's own tests set theirs
    (tests/graph/test_timeouts.py, tests/security/test_hostile.py)."""
    app_settings = dataclasses.replace(
        Settings.from_env(store=StoreSettings()), statement_timeout=TEST_STATEMENT_TIMEOUT
    )
    app = create_app(
        app_settings,
        store=store,
        rate_limiter=None,
        points_limiter=None,
        failed_auth_limiter=None,
        key_cache=None,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        async def make(role: Role, **rights: Any) -> Api:
            """`rights`: `scopes=`, `customers=`, `expires_at=` of `create_key`."""
            _, key = await create_key(store, role, f"test {role.value}", **rights)
            return Api(client, key)

        yield make


@pytest.fixture
async def admin(api_for: Callable[[Role], Any]) -> Api:
    return await api_for(Role.ADMIN)
