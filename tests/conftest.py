"""Shared fixtures: a real embedded FalkorDB started by the tests (one server for the session,
one graph per test), and Neo4j when NEO4J_URI is set."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from graph.falkordb_store import FalkorStore
from graph.settings import StoreSettings, parse_store
from graph.store import GraphStore, open_store

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATASETS = Path(os.environ.get("CRM_GRAPH_DATASETS", SHARED / "datasets"))
NEO4J_URI = os.environ.get("NEO4J_URI")
_graph_names = itertools.count(1)


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


def _engines() -> Iterator[object]:
    yield pytest.param("falkordb", id="falkordb")
    yield pytest.param(
        "neo4j",
        id="neo4j",
        marks=pytest.mark.skipif(
            not NEO4J_URI,
            reason="NEO4J_URI is not set: no Neo4j server to test against "
            "(docker compose up neo4j, then NEO4J_URI=neo4j://localhost:7687)",
        ),
    )


@pytest.fixture(params=list(_engines()))
async def store(
    request: pytest.FixtureRequest, embedded_server: FalkorStore, embedded_settings: StoreSettings
) -> AsyncIterator[GraphStore]:
    """An empty, bootstrapped graph on each engine."""
    if request.param == "neo4j":
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
