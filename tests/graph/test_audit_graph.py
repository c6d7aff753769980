"""The audit trail's own graph (graph/audit.py, `FalkorStore.audit_graph`).

FalkorDB lets a write waiting for a graph's lock go before every read asked after it, so the
server's audit flush, queued behind one long read of the customers, held every other read until
that read ended. The entries now live in a graph of their own on FalkorDB (the same database on
Neo4j): these tests show that an audit write waits for no read of the customers' graph and holds
none, that the audit trail's readers and erasure still find every entry, and that entries an
earlier release wrote in the customers' graph are moved, none lost and none doubled, even when a
move is stopped half way.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from crm_graph.api.auth.keys import authenticate, create_key, list_keys
from crm_graph.graph import audit
from crm_graph.graph.falkordb_store import AUDIT_GRAPH_SUFFIX, FalkorStore
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore, open_store

LONG_READ = "UNWIND range(1, $n) AS x WITH x WHERE x % 7 = 3 RETURN count(x) AS c"
"""A read of the customers' graph that runs for seconds and touches nothing."""


def _entry(i: int, customers: list[str] | None = None) -> audit.AuditEntry:
    return audit.AuditEntry("k1", "query customer", customers or [f"C{i}"], 1_000 + i, f"r{i}")


async def test_entries_are_kept_in_the_audit_graph_and_read_back(store: GraphStore) -> None:
    await audit.record(store, [_entry(i) for i in range(3)])
    found = await audit.entries(store, key_id="k1")
    assert [e.request_id for e in found] == ["r2", "r1", "r0"]
    # erasure reaches them
    assert await audit.anonymise(store, "C1", "erased-1") == 1
    assert (await audit.entries(store, customer_id="erased-1"))[0].request_id == "r1"
    assert await audit.entries(store, customer_id="C1") == []
    assert await audit.prune(store, 1_002) == 2
    if isinstance(store, FalkorStore):  # in a graph of their own, none in the customers'
        assert store.audit_graph().graph_name == store.graph_name + AUDIT_GRAPH_SUFFIX
        assert await store.read("MATCH (a:AuditEntry) RETURN count(a) AS n") == [{"n": 0}]
        in_trail = await store.audit_graph().read("MATCH (a:AuditEntry) RETURN count(a) AS n")
        assert in_trail == [{"n": 1}]
    else:
        assert store.audit_graph() is store


async def _long_read_running(store: GraphStore) -> asyncio.Task[list[dict[str, object]]]:
    """A read of the customers' graph, started, that runs on for seconds: its size doubled
    until one takes over 1.5 s on this machine (so the test holds on a fast or a loaded one)."""
    n = 2_000_000
    while True:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await store.read(LONG_READ, {"n": n})
        if loop.time() - started > 1.5 or n > 512_000_000:
            break
        n *= 2
    task = asyncio.create_task(store.read(LONG_READ, {"n": n * 2}))
    await asyncio.sleep(0.3)  # sent and running
    assert not task.done()
    return task


async def test_an_audit_flush_neither_waits_for_nor_holds_a_long_read(
    embedded_settings: StoreSettings,
) -> None:
    """On FalkorDB: while a read of the customers runs for seconds, an audit write and a point
    read of the customers sent after it both answer before the long read ends. With the entries
    in the customers' graph, the write waited for the long read and the point read for the write
    (the last assertion shows the lock: a write to the customers' graph does wait)."""
    settings = StoreSettings(kind="embedded", data_dir=embedded_settings.data_dir,
                             graph_name="audit-lock")  # fmt: skip
    readers = [await open_store(settings) for _ in range(3)]
    try:
        main, writer, reader = readers
        await main.write("CREATE (:Customer {id: 'P1', name: 'Point'})")
        long_read = await _long_read_running(main)
        flushed = asyncio.create_task(audit.record(writer, [_entry(1)]))
        await asyncio.sleep(0.05)
        point = asyncio.create_task(reader.read("MATCH (c:Customer {id: 'P1'}) RETURN c.name AS n"))
        finished: list[str] = []
        names = {flushed: "flush", point: "point read", long_read: "long read"}
        for task, name in names.items():
            task.add_done_callback(lambda _, name=name: finished.append(name))  # type: ignore[misc]
        await asyncio.gather(*names)
        assert point.result() == [{"n": "Point"}]
        assert finished[-1] == "long read", finished
        # and a write to the customers' graph, sent the same way, does wait for the long read
        long_read = await _long_read_running(main)
        blocked = asyncio.create_task(writer.write("CREATE (:Customer {id: 'P2'})"))
        await asyncio.sleep(0.3)
        assert not blocked.done()
        await asyncio.gather(blocked, long_read)
    finally:
        await readers[0].delete_graph()  # type: ignore[attr-defined]
        for opened in readers:
            await opened.close()


def _rows(entries: list[audit.AuditEntry]) -> list[dict[str, object]]:
    return [{"keyId": e.key_id, "operation": e.operation, "customers": e.customers, "at": e.at,
             "requestId": e.request_id} for e in entries]  # fmt: skip


async def test_entries_an_earlier_release_kept_with_the_customers_are_moved(
    embedded_settings: StoreSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries in the customers' graph (where releases before this one wrote them) are moved to
    the audit trail's graph when the store is opened, in batches; a move stopped after writing a
    batch and before deleting it (the process killed) doubles none of them."""
    monkeypatch.setattr(audit, "MOVE_BATCH", 2)
    settings = StoreSettings(kind="embedded", data_dir=embedded_settings.data_dir,
                             graph_name="audit-legacy")  # fmt: skip
    store = await open_store(settings)
    assert isinstance(store, FalkorStore)
    try:
        legacy = [_entry(i, [f"C{i}", "C99"]) for i in range(5)]
        await store.write(audit.RECORD, {"rows": _rows(legacy)})  # as an earlier release did
        await store.audit_graph().write(audit.MOVED, {"rows": _rows(legacy[:2])})  # half moved
        await store.bootstrap()
        count = "MATCH (a:AuditEntry) RETURN count(a) AS n"
        assert await store.read(count) == [{"n": 0}]
        assert await store.audit_graph().read(count) == [{"n": 5}]
        found = await audit.entries(store, customer_id="C99")
        assert sorted(found, key=lambda e: e.at) == legacy
        await store.bootstrap()  # nothing left to move
        assert await store.audit_graph().read(count) == [{"n": 5}]
        # the audit trail's graph opened as a graph (`CRM_GRAPH_GRAPH=audit-legacy__audit
        # crm-graph query ...`) shows them, and moves nothing further
        itself = await open_store(dataclasses.replace(settings, graph_name="audit-legacy__audit"))
        try:
            assert itself.audit_graph() is itself
            assert await itself.read(count) == [{"n": 5}]
        finally:
            await itself.close()
    finally:
        await store.delete_graph()
        await store.close()


async def test_a_keys_last_use_is_noted_beside_the_audit_trail(store: GraphStore) -> None:
    """A key's last use, noted once a minute per key while it is used, is on FalkorDB a write
    to the audit trail's graph, not the customers' (where it queued behind long reads like the
    audit flush did); listed, a key's `lastUsedAt` is the later of its note and what an earlier
    release wrote on the key."""
    _, key = await create_key(store, "analyst", "bi")
    await authenticate(store, f"Bearer {key}")
    [used] = await list_keys(store)
    assert used.last_used_at is not None
    on_key = await store.read("MATCH (k:ApiKey) RETURN k.lastUsedAt AS at")
    if isinstance(store, FalkorStore):
        assert on_key == [{"at": None}]
        noted = await store.audit_graph().read("MATCH (u:KeyUse) RETURN u.keyId AS id")
        assert noted == [{"id": used.id}]
        # a time an earlier release wrote on the key, later than the note, is the one shown
        later = int(used.last_used_at.timestamp() * 1000) + 5_000
        await store.write("MATCH (k:ApiKey) SET k.lastUsedAt = $at", {"at": later})
        [shown] = await list_keys(store)
        assert shown.last_used_at is not None
        assert int(shown.last_used_at.timestamp() * 1000) == later
    else:
        assert on_key[0]["at"] is not None
