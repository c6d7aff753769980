"""The API benchmark's own machinery at a tiny size: a real `crm-graph serve` subprocess and the
raw statement on one embedded store; both sides answer every request and agree. No timings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.api import (
    api_server,
    create_admin_key,
    customer_ids,
    ensure_loaded,
    graphql_360,
    graphql_floor,
    measure,
    measure_sides,
    raw_360,
    wait_ready,
)
from bench.http import HttpClient
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import open_store
from crm_graph.loaders.synthetic import generate


async def test_both_sides_answer_every_request_and_agree(tmp_path: Path) -> None:
    folder = tmp_path / "business"
    generate(folder, 200, 1)
    store_dir = tmp_path / "store"
    store = await open_store(StoreSettings(kind="embedded", data_dir=store_dir))
    try:
        assert await ensure_loaded(store, folder, store_dir, tmp_path / "rejects.csv")
        assert not await ensure_loaded(store, folder, store_dir, tmp_path / "rejects.csv")
        ids = await customer_ids(store)
        _, key = await asyncio.to_thread(create_admin_key, store_dir)
        with api_server(store_dir, tmp_path / "server.log") as server:
            await wait_ready(server)
            async with HttpClient(server.url, timeout=30) as client:
                sides = await measure_sides(
                    lambda i: raw_360(store, i),
                    lambda i: graphql_360(client, key, i),
                    ids,
                    clients=2,
                    seconds=1,
                    warmup=5,
                )
                for side in sides:
                    for phase in (side.sequential, side.concurrent):
                        assert phase.requests > 0
                        assert phase.errors == 0, phase.first_error
                floor = await measure(
                    lambda i: graphql_floor(client, key, i), ids, clients=1, seconds=0.5
                )
                assert floor.requests > 0 and floor.errors == 0, floor.first_error
                compared = 0
                for customer_id in ids[:40]:
                    raw = await raw_360(store, customer_id)
                    answer = await graphql_360(client, key, customer_id)
                    assert answer["totalSpend"] == pytest.approx(raw["totalSpend"])
                    assert answer["orderCount"] == raw["orderCount"]
                    assert [t["id"] for t in answer["transactions"]["nodes"]] == [
                        t["id"] for t in raw["transactions"]
                    ]
                    assert sorted(
                        t["customer"]["id"] for t in answer["socialTies"]["nodes"]
                    ) == sorted(t["id"] for t in raw["ties"])
                    compared += raw["orderCount"] > 0
                assert compared > 0
        assert server.process.returncode is not None
    finally:
        await store.close()
