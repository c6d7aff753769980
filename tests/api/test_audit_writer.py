"""A serving app's audit entries (api/audit_trail.py `AuditWriter`): written in batches, not a
statement per read; none lost on a clean stop; read back whole by the audit log; an erasure
reaches the entries still waiting to be written. Through the real app with its lifespan run, on
each engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from crm_graph.api.app import create_app
from crm_graph.api.audit_trail import AuditWriter
from crm_graph.api.auth.keys import create_key
from crm_graph.api.auth.principal import Role
from crm_graph.api.settings import Settings
from crm_graph.graph import audit
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore

READS = 12
READ = 'query { customer(id: "A%d") { id name } }'


async def _people(store: GraphStore) -> None:
    await store.write(
        "UNWIND range(0, $n - 1) AS i CREATE (:Customer {id: 'A' + toString(i), "
        "name: 'Audited ' + toString(i)})",
        {"n": READS},
    )


@asynccontextmanager
async def serving(
    store: GraphStore, flush_seconds: float
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient, dict[str, str]]]:
    """The app on `store` with its lifespan run (as `crm-graph serve` runs it), an admin key."""
    settings = dataclasses.replace(
        Settings.from_env(store=StoreSettings()), audit_flush_seconds=flush_seconds
    )
    app = create_app(settings, store=store, rate_limiter=None, points_limiter=None,
                     failed_auth_limiter=None, key_cache=None)  # fmt: skip
    info, key = await create_key(store, Role.ADMIN, "audit writer test")
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        yield app, client, {"Authorization": f"Bearer {key}", "x-key-id": info.id}


async def _data(client: httpx.AsyncClient, headers: dict[str, str], query: str) -> Any:
    response = await client.post("/graphql", json={"query": query}, headers=headers)
    body = response.json()
    assert response.status_code == 200 and not body.get("errors"), body
    return body["data"]


async def test_reads_cost_no_audit_statement_each_and_a_clean_stop_writes_them_all(
    store: GraphStore,
) -> None:
    """Given a serving app that flushes its audit entries every minute, when a key reads twelve
    customers one request each, then no request wrote an entry on its own (no store round trip
    per read but the key's and the customer's); when the app stops cleanly, all are written."""
    await _people(store)
    async with serving(store, flush_seconds=60.0) as (app, client, headers):
        writer: AuditWriter = app.state.audit_writer
        before = store.round_trips
        for i in range(READS):
            await _data(client, headers, READ % i)
        # per read the key's look-up and the customer; the key's last use noted once a minute
        assert store.round_trips - before <= 2 * READS + 1
        assert writer.pending == READS
        assert writer.statements == 0
        assert await audit.entries(store, key_id=headers["x-key-id"]) == []
    written = await audit.entries(store, key_id=headers["x-key-id"])
    assert sorted(c for e in written for c in e.customers) == sorted(f"A{i}" for i in range(READS))
    assert {e.operation for e in written} == {"query customer"}
    assert writer.pending == 0 and writer.statements == 1  # twelve entries, one statement


async def test_the_audit_log_shows_every_request_answered_before_it(store: GraphStore) -> None:
    """Given entries waiting to be written, when an administrator reads the audit log, then it
    shows them (the log flushes first): buffering never hides a read from the trail."""
    await _people(store)
    async with serving(store, flush_seconds=60.0) as (_, client, headers):
        for i in range(3):
            await _data(client, headers, READ % i)
        log = await _data(
            client, headers, '{ auditLog(customerId: "A1") { nodes { customerIds } } }'
        )
        assert log["auditLog"]["nodes"] == [{"customerIds": ["A1"]}]


async def test_an_erasure_reaches_the_entries_waiting_to_be_written(store: GraphStore) -> None:
    """Given a read of A1 whose entry waits to be written, when A1 is erased, then no entry
    written afterwards names A1: the waiting one names the anonymous id, as the written do."""
    await _people(store)
    async with serving(store, flush_seconds=60.0) as (app, client, headers):
        await _data(client, headers, READ % 1)
        await _data(client, headers, READ % 2)
        assert app.state.audit_writer.pending == 2
        erased = await _data(
            client, headers,
            'mutation { eraseCustomer(id: "A1") { ... on EraseCustomerSuccess { anonymousId } } }',
        )  # fmt: skip
        anonymous = erased["eraseCustomer"]["anonymousId"]
    written = await audit.entries(store, key_id=headers["x-key-id"])
    named = [c for e in written for c in e.customers]
    assert "A1" not in named
    assert named.count(anonymous) == 2  # the read's entry and the erasure's
    assert "A2" in named


async def test_a_full_batch_is_written_without_waiting_for_the_interval(
    store: GraphStore,
) -> None:
    """Given a writer flushing every minute in batches of 5, when 5 entries arrive, then they are
    written at once, in one statement; 2 more then wait for the interval, or the stop."""
    writer = AuditWriter(store, every_s=60.0, batch=5)
    writer.start()
    try:
        for i in range(5):
            writer.add(audit.AuditEntry("k", "query customer", [f"A{i}"], i, f"r{i}"))
        for _ in range(500):  # the writer's task runs at the loop's next turns
            if writer.statements:
                break
            await asyncio.sleep(0.01)
        assert writer.pending == 0 and writer.statements == 1
        for i in range(5, 7):
            writer.add(audit.AuditEntry("k", "query customer", [f"A{i}"], i, f"r{i}"))
        await asyncio.sleep(0.05)
        assert writer.pending == 2 and writer.statements == 1
    finally:
        await writer.close()
    assert writer.pending == 0 and writer.statements == 2
    assert len(await audit.entries(store, key_id="k")) == 7


def test_a_writer_refuses_an_interval_it_cannot_keep() -> None:
    with pytest.raises(ValueError, match="positive interval"):
        AuditWriter(None, every_s=0)  # type: ignore[arg-type]
