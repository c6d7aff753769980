"""A FalkorDB server that crm-graph did not start (`CRM_GRAPH_STORE=falkordb://host:port`)."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from crm_graph.graph.embedded import PLAN_CACHE_SIZE, _free_loopback_port, binaries
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import open_store


@pytest.fixture
def external_server(tmp_path: Path) -> Iterator[int]:
    """A FalkorDB server on a loopback port, started as its documentation says, with the
    module's defaults (CACHE_SIZE 25); its port."""
    server, module = binaries()
    port = _free_loopback_port()
    process = subprocess.Popen(
        [str(server), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--dir", str(tmp_path), "--loadmodule", str(module)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        client.close()
        process.terminate()
        process.wait(30)


async def test_a_server_keeping_too_few_plans_is_named_with_the_remedy(
    external_server: int, caplog: pytest.LogCaptureFixture
) -> None:
    # given an external FalkorDB with the module's default plan cache
    settings = StoreSettings(kind="falkordb", host="127.0.0.1", port=external_server)
    # when crm-graph connects to it
    with caplog.at_level(logging.WARNING, logger="crm_graph.graph.falkordb_store"):
        store = await open_store(settings)
    try:
        # then it works ...
        await store.write("CREATE (:Customer {id: 'c1', name: 'Ada'})")
        assert await store.read("MATCH (c:Customer) RETURN c.name AS name") == [{"name": "Ada"}]
    finally:
        await store.close()
    # ... and a warning says how many plans it keeps, and how to start it
    [warning] = [r.getMessage() for r in caplog.records if "CACHE_SIZE" in r.getMessage()]
    assert "keeps the execution plans of 25 statements" in warning
    assert f"--loadmodule falkordb.so CACHE_SIZE {PLAN_CACHE_SIZE}" in warning


async def test_the_embedded_server_keeps_enough_plans_to_say_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="crm_graph.graph.falkordb_store"):
        store = await open_store(StoreSettings(kind="embedded", data_dir=tmp_path / "data"))
        await store.close()
    assert not [r for r in caplog.records if "CACHE_SIZE" in r.getMessage()]
