"""A serving app takes what it holds from start-up out of the garbage collector's full
collections (`api.app.freeze_startup_heap`): a full collection walked every object of the
schema, the caches and the modules in the middle of a request (66 ms of CPU, about 500 ms of
blocked event loop on the shared 2-core machine; see bench/lag.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from crm_graph.api.app import create_app
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test session collects as usual


async def test_a_started_app_keeps_its_start_up_objects_out_of_full_collections(
    store: GraphStore, unfrozen: None
) -> None:
    app = create_app(StoreSettings(), store=store, rate_limiter=None, points_limiter=None,
                     failed_auth_limiter=None, key_cache=None)  # fmt: skip
    gc.collect()
    walked_before = len(gc.get_objects(generation=2))
    assert gc.get_freeze_count() == 0 and walked_before > 10_000
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() >= walked_before  # the app's schema and modules, at least
        assert len(gc.get_objects(generation=2)) < walked_before / 10  # what a full one walks
