"""The outbox (`graph/events.py`) under `crm-graph load` and a training: one event per row
written, none for a rejected row; one per training run; the reading side's contract."""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench.outbox import write_backlog
from crm_graph.graph import events, writes
from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import load_folder
from tests.helpers import write_csv


def small_business(folder: Path) -> Path:
    write_csv(folder / "customers.csv", [
        {"customer_id": "c1", "name": "Ann", "email": "ann@x.org"},
        {"customer_id": "c2", "name": "Bob"},
        {"customer_id": "c3", "name": "Cy", "email": "not an email"},
        {"customer_id": "", "name": "nobody"},
    ])  # fmt: skip
    write_csv(folder / "products.csv", [{"product_id": "p1", "name": "Mug", "price": "5"}])
    write_csv(folder / "transactions.csv", [
        {"transaction_id": "t1", "customer_id": "c1", "timestamp": "2024-01-01",
         "product_id": "p1", "quantity": "2", "unit_price": "2.5"},
        {"transaction_id": "t1", "customer_id": "c1", "timestamp": "2024-01-01",
         "amount": "1.1"},
        {"transaction_id": "t2", "customer_id": "ghost", "timestamp": "2024-01-01",
         "amount": "3"},
    ])  # fmt: skip
    write_csv(folder / "interactions.csv", [
        {"interaction_id": "i1", "customer_id": "c2", "timestamp": "2024-01-02", "type": "chat"},
        {"interaction_id": "i2", "customer_id": "c2", "timestamp": "2024-01-02", "type": "fax"},
    ])  # fmt: skip
    write_csv(folder / "social_ties.csv", [
        {"source_customer_id": "c1", "target_customer_id": "c2", "type": "FAMILY"},
        {"source_customer_id": "c1", "target_customer_id": "c1"},
    ])  # fmt: skip
    return folder


async def test_a_load_writes_one_event_per_row_written_and_none_for_a_rejected_one(
    store: GraphStore, tmp_path: Path
) -> None:
    # given a folder with good rows and rejected ones
    folder = small_business(tmp_path / "biz")
    # when it is loaded
    report = await load_folder(store, folder, progress=False, rejects_path=tmp_path / "rej.csv")
    assert sum(f.rejected for f in report.files) == 4
    # then each written row has its one event, in file order, and no rejected row has one
    found = await events.events_after(store, 0, limit=1000)
    assert [(e.sequence, e.type, e.customer_ids) for e in found] == [
        (1, "customer.created", ("c1",)),
        (2, "customer.created", ("c2",)),
        (3, "customer.created", ("c3",)),  # its bad email dropped, the row kept
        (4, "transaction.recorded", ("c1",)),
        (5, "interaction.recorded", ("c2",)),
        (6, "tie.recorded", ("c1", "c2")),
    ]
    assert found[3].data == {"customerId": "c1", "productIds": ["p1"], "total": "6.10",
                             "transactionId": "t1"}  # fmt: skip
    assert found[5].data == {"sourceId": "c1", "targetId": "c2", "type": "FAMILY"}
    assert await events.last_sequence(store) == 6

    # and loading it again writes the rows again: updates, recorded again, numbered on
    await load_folder(store, folder, progress=False, rejects_path=tmp_path / "rej2.csv")
    again = await events.events_after(store, 6, limit=1000)
    assert [e.sequence for e in again] == list(range(7, 13))
    assert Counter(e.type for e in again) == {
        "customer.updated": 3,
        "transaction.recorded": 1,
        "interaction.recorded": 1,
        "tie.recorded": 1,
    }


async def test_events_after_pages_filters_and_refuses_unknown_types(
    store: GraphStore, tmp_path: Path
) -> None:
    await load_folder(store, small_business(tmp_path / "biz"), progress=False,
                      rejects_path=tmp_path / "rej.csv")  # fmt: skip
    page = await events.events_after(store, 0, limit=2)
    assert [e.sequence for e in page] == [1, 2]
    rest = await events.events_after(store, page[-1].sequence, limit=100)
    assert [e.sequence for e in rest] == [3, 4, 5, 6]
    ties = await events.events_after(store, 0, types=["tie.recorded", "customer.created"])
    assert [e.type for e in ties] == ["customer.created"] * 3 + ["tie.recorded"]
    assert await events.events_after(store, 6) == []
    with pytest.raises(ValueError, match=r"unknown event type\(s\) customer\.deleted"):
        await events.events_after(store, 0, types=["customer.deleted"])
    with pytest.raises(ValueError, match="limit"):
        await events.events_after(store, 0, limit=0)


async def test_an_empty_store_has_no_event_and_prune_keeps_the_numbering(
    store: GraphStore, tmp_path: Path
) -> None:
    assert await events.last_sequence(store) == 0
    assert await events.events_after(store, 0) == []
    await load_folder(store, small_business(tmp_path / "biz"), progress=False,
                      rejects_path=tmp_path / "rej.csv")  # fmt: skip
    written = await events.events_after(store, 0)
    # pruning the events before the newest one's time leaves the later ones, numbers unchanged
    assert await events.prune(store, written[0].at_ms) == 0
    assert await events.prune(store, written[-1].at_ms + 1) == 6
    assert await events.events_after(store, 0) == []
    await events.record(store, events.SCORES_WRITTEN, [], version="v1", customers=3)
    (scored,) = await events.events_after(store, 0)
    assert scored.sequence == 7 and scored.customer_ids == ()
    assert scored.data == {"customers": 3, "version": "v1"}
    with pytest.raises(ValueError, match="unknown event type"):
        await events.record(store, "scores.deleted", [])


class _Killed(BaseException):
    """The process died here (a BaseException: nothing in the loader catches it)."""


class _DiesAtWrite:
    """The real store, but the process "dies" just before its `at`-th write statement reaches
    it: every statement before has committed, that one and any after never run."""

    def __init__(self, store: GraphStore, at: int) -> None:
        self._store = store
        self._at = at
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def write(self, query: str, params: dict[str, Any] | None = None) -> list[Any]:
        self.writes += 1
        if self.writes == self._at:
            raise _Killed(query)
        return await self._store.write(query, params)


ORDERS_AND_EVENTS = f"""
MATCH (t:Transaction)
OPTIONAL MATCH (e:Event {{type: '{events.TRANSACTION_RECORDED}'}})
WHERE e.data CONTAINS ('"transactionId":"' + t.id + '"')
WITH t, e ORDER BY t.id, e.sequence
RETURN t.id AS id, t.total AS total, t.itemCount AS items, collect(e.amount) AS eventTotals
ORDER BY id
"""
"""Each stored order, its total and item count, and the totals its events carry, oldest first."""

EVENTS_OF_NO_ORDER = f"""
OPTIONAL MATCH (t:Transaction)
WITH collect(t.id) AS stored
MATCH (e:Event {{type: '{events.TRANSACTION_RECORDED}'}})
WITH e, [id IN stored WHERE e.data CONTAINS ('"transactionId":"' + id + '"')] AS named
WHERE size(named) = 0
RETURN e.sequence AS sequence
"""


async def test_an_order_its_lines_total_and_event_commit_together_whatever_the_crash_point(
    store: GraphStore, tmp_path: Path
) -> None:
    # given a load of orders, one of them (t1) with its lines in two batches of one line each
    folder = small_business(tmp_path / "biz")
    write_csv(folder / "transactions.csv", [
        {"transaction_id": "t1", "customer_id": "c1", "timestamp": "2024-01-01",
         "product_id": "p1", "quantity": "2", "unit_price": "2.5"},
        {"transaction_id": "t1", "customer_id": "c1", "timestamp": "2024-01-01",
         "amount": "1.1"},
        {"transaction_id": "t3", "customer_id": "c2", "timestamp": "2024-01-03",
         "product_id": "p1", "quantity": "1", "unit_price": "5"},
    ])  # fmt: skip
    load = functools.partial(load_folder, folder=folder, progress=False, batch_size=1)
    counting = _DiesAtWrite(store, at=0)
    await load(counting, rejects_path=tmp_path / "r.csv")
    complete = [(r["id"], r["total"], r["items"], r["eventTotals"])
                for r in await store.read(ORDERS_AND_EVENTS)]  # fmt: skip
    assert complete == [("t1", 6.1, 2, [5.0, 6.1]), ("t3", 5.0, 1, [5.0])]
    for at in range(1, counting.writes + 1):
        await store.write("MATCH (n) DETACH DELETE n")
        # when the process dies just before its `at`-th write statement
        with pytest.raises(_Killed):
            await load(_DiesAtWrite(store, at), rejects_path=tmp_path / f"r{at}.csv")
        # then every order stored has its total, and its last event carries that total; no
        # event names an order that is not stored: each batch's orders and events committed
        # together or not at all
        for order in await store.read(ORDERS_AND_EVENTS):
            assert order["total"] is not None and order["items"] is not None, (at, order)
            assert order["eventTotals"][-1:] == [order["total"]], (at, order)
        assert await store.read(EVENTS_OF_NO_ORDER) == [], at
        # and loading again completes the job
        await load(store, rejects_path=tmp_path / f"again{at}.csv")
        again = [(r["id"], r["total"], r["items"], r["eventTotals"][-1])
                 for r in await store.read(ORDERS_AND_EVENTS)]  # fmt: skip
        assert again == [("t1", 6.1, 2, 6.1), ("t3", 5.0, 1, 5.0)], at


ERASED_STATE = f"""
OPTIONAL MATCH (kept:Customer {{id: 'c2'}})
OPTIONAL MATCH (gone:Customer {{erased: true}})
WITH kept, gone
OPTIONAL MATCH (e:Event {{type: '{events.CUSTOMER_ERASED}'}})
WITH kept, gone, count(e) AS events
RETURN kept IS NOT NULL AS kept,
       CASE WHEN kept IS NULL THEN 0 ELSE size([(kept)-[:HAD]->(i:Interaction) | 1])
            + size([(kept)-[:HAS_SOURCE]->(s:SourceRecord) | 1])
            + size([(kept)-[t:FAMILY]-(:Customer) | 1])
            + size([(kept)-[:IN_SEGMENT]->(g:Segment) | 1]) END AS keptParts,
       gone IS NOT NULL AS erased,
       CASE WHEN gone IS NULL THEN 0 ELSE size([(gone)-[:HAD]->(i:Interaction) | 1])
            + size([(gone)-[:HAS_SOURCE]->(s:SourceRecord) | 1])
            + size([(gone)-[t:FAMILY]-(:Customer) | 1])
            + size([(gone)-[:IN_SEGMENT]->(g:Segment) | 1]) END AS goneParts,
       events
"""
"""Customer c2 as it stands: kept (with its contact, source record, tie and segment: 4 parts),
or erased (an anonymous customer with none of them), and how many `customer.erased` events."""


async def test_a_customer_is_erased_with_its_event_or_not_at_all_whatever_the_crash_point(
    store: GraphStore, tmp_path: Path
) -> None:
    # given c2 with a contact, a source record, a tie to c1 and a segment
    folder = small_business(tmp_path / "biz")

    async def given() -> None:
        await store.write("MATCH (n) DETACH DELETE n")
        await load_folder(store, folder, progress=False, rejects_path=tmp_path / "r.csv")
        await store.write(
            "MATCH (c:Customer {id: 'c2'}) CREATE (c)-[:IN_SEGMENT]->(:Segment {id: 's'})"
        )
        (state,) = await store.read(ERASED_STATE)
        assert state == {"kept": True, "keptParts": 4, "erased": False, "goneParts": 0,
                         "events": 0}  # fmt: skip

    await given()
    counting = _DiesAtWrite(store, at=0)
    assert await writes.erase_customer(counting, "c2", 1)  # type: ignore[arg-type]
    for at in range(1, counting.writes + 1):
        await given()
        # when the process dies just before the erasure's `at`-th write statement
        with pytest.raises(_Killed):
            await writes.erase_customer(_DiesAtWrite(store, at), "c2", 1)  # type: ignore[arg-type]
        # then c2 is untouched and no event says otherwise, or erased whole with its one event
        (state,) = await store.read(ERASED_STATE)
        assert state in (
            {"kept": True, "keptParts": 4, "erased": False, "goneParts": 0, "events": 0},
            {"kept": False, "keptParts": 0, "erased": True, "goneParts": 0, "events": 1},
        ), (at, state)


# -- a read of the outbox looks at a bounded window, however long the backlog ------------------

BACKLOG = 12_000
"""More than `WINDOWS` windows of `WINDOW` sequences: a read from 0 without an upper bound
examined all of them."""


def _neo4j_rows(plan: Any) -> list[tuple[str, int]]:
    found = [(str(plan["operatorType"]), int(plan.get("rows", 0)))]
    for child in plan.get("children", []):
        found.extend(_neo4j_rows(child))
    return found


def _falkordb_rows(operation: Any) -> list[tuple[str, int]]:
    found = [(str(operation.name), int(operation.records_produced))]
    for child in operation.children:
        found.extend(_falkordb_rows(child))
    return found


async def profiled_rows(
    store: GraphStore, query: str, params: dict[str, Any]
) -> list[tuple[str, int]]:
    """Each step of the statement's profile, with the rows it produced (the engine's own count
    of what it examined, not a time)."""
    if store.dialect.name == "neo4j":
        async with store._driver.session() as session:  # type: ignore[attr-defined]
            summary = await (await session.run("PROFILE " + query, params)).consume()
        return _neo4j_rows(summary.profile)
    plan = await store._graph.profile(query, params)  # type: ignore[attr-defined]
    return _falkordb_rows(plan.structured_plan)


def recording_reads(store: GraphStore, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """The statements `store.read` runs from now on, with their parameters."""
    seen: list[tuple[str, Any]] = []
    read = store.read

    async def recorded(query: str, params: Any = None) -> Any:
        seen.append((query, params))
        return await read(query, params)

    monkeypatch.setattr(store, "read", recorded)
    return seen


@pytest.mark.parametrize("types", [None, [events.CUSTOMER_ERASED]], ids=["all", "erasures"])
async def test_a_read_of_the_outbox_examines_a_bounded_window_of_it(
    store: GraphStore, monkeypatch: pytest.MonkeyPatch, types: list[str] | None
) -> None:
    # given a backlog of 12,000 events of customer.updated
    await write_backlog(store, BACKLOG)
    # when a reader at 0 (of every type, or of erasures only: none there) polls once
    statements = recording_reads(store, monkeypatch)
    page = await events.read_after(store, 0, types=types, limit=100)
    monkeypatch.undo()
    # then each statement it ran examined at most one window of the outbox (as the engine
    # counts the rows each step produced), and it ran at most WINDOWS of them
    outbox_reads = [(q, p) for q, p in statements if q == events.EVENTS_AFTER]
    assert 1 <= len(outbox_reads) <= events.WINDOWS
    for query, params in outbox_reads:
        steps = await profiled_rows(store, query, params)
        assert max(rows for _, rows in steps) <= events.WINDOW, steps
    if types is None:
        assert [e.sequence for e in page.events] == list(range(1, 101))
        assert page.reached == 100 and len(outbox_reads) == 1
    else:
        # the erasure reader found none, and moves on past the windows it looked at, never
        # further than the last event
        assert page.events == []
        assert page.reached == events.WINDOW * events.WINDOWS < page.last == BACKLOG
        again = await events.read_after(store, page.reached, types=types)
        assert (again.events, again.reached, again.caught_up) == ([], BACKLOG, True)


async def test_the_outbox_read_seeks_the_index_of_sequences(store: GraphStore) -> None:
    # given a backlog, when the window statement is profiled, then its first step finds the
    # events by the index on Event.sequence, not by a scan of every event
    await write_backlog(store, 3_000)
    steps = await profiled_rows(
        store, events.EVENTS_AFTER, {"after": 0, "upto": 1_000, "types": None, "limit": 100}
    )
    names = [name for name, _ in steps]
    seeks = [n for n in names if ("Index" in n and "Seek" in n) or "By Index Scan" in n]
    assert seeks, names
    assert not [n for n in names if "LabelScan" in n or n.startswith("Node By Label Scan")], names
