"""The audit trail: who read or wrote which customers, when, in which request.

`(:AuditEntry {id, keyId, operation, customers, at, requestId})`: `id` is the entry's own (a
request's entries share its `requestId`: a subscription writes one per result), `customers` is a
list of customer ids, `operation` names the GraphQL operation type and its root fields
(`query customer`, `mutation eraseCustomer`); never a personal value. One entry per request that
read or wrote customers, written in one statement (`RECORD`) with the request's other entries.
Entries older than the retention are deleted by `prune` (the server prunes at most once an hour;
`crm-graph audit prune` on demand).

Erasure: `eraseCustomer` replaces the erased id in every entry by the anonymous id the erased
customer's orders keep (`ANONYMISE`), so the trail still says that a key read a customer at a
time, and nothing links it to the person any more.

Where: every function here runs its statements on `store.audit_graph()`. On FalkorDB that is a
graph of its own beside the customers' (`FalkorStore.audit_graph`: the server's audit writes
then never wait for, nor hold, a read of the customers); entries an earlier release wrote in the
customers' graph are moved there when the store is opened (`move_entries`). On Neo4j it is the
one database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from crm_graph.graph.pages import KeysetPage
from crm_graph.graph.store import GraphStore

RECORD = """
UNWIND $rows AS r
CREATE (a:AuditEntry {id: r.id, keyId: r.keyId, operation: r.operation, customers: r.customers,
                      at: r.at, requestId: r.requestId})
"""

_MATCHING = """
MATCH (a:AuditEntry)
WHERE ($keyId IS NULL OR a.keyId = $keyId) AND ($customer IS NULL OR $customer IN a.customers)
  AND ($from IS NULL OR a.at >= $from) AND ($to IS NULL OR a.at < $to)
"""
_FIELDS = """
RETURN a.keyId AS keyId, a.operation AS operation, a.customers AS customers, a.at AS at,
       a.requestId AS requestId, ident AS id
"""
# Entries written before they had an `id` are told apart by their request id.
_IDENT = "WITH a, coalesce(a.id, a.requestId) AS ident\n"

ENTRIES = _MATCHING + _IDENT + "WITH a, ident ORDER BY a.at DESC, ident DESC LIMIT $first" + _FIELDS

# A page of the log, newest first, in (at, id) order: the entries strictly after the cursor
# (older), or read backwards strictly before it (newer), the nearest first. `graph.pages`' keyset
# rule, as a WHERE on the entries themselves (the log is a root list, not a customer's relation).
_PAGE_WHERE = """
WHERE ($afterId IS NULL OR a.at < $afterKey OR (a.at = $afterKey AND ident < $afterId))
  AND ($beforeId IS NULL OR a.at > $beforeKey OR (a.at = $beforeKey AND ident > $beforeId))
"""
PAGE_FORWARDS = (
    _MATCHING
    + _IDENT
    + _PAGE_WHERE
    + "WITH a, ident ORDER BY a.at DESC, ident DESC LIMIT $take"
    + _FIELDS
)
PAGE_BACKWARDS = (
    _MATCHING
    + _IDENT
    + _PAGE_WHERE
    + "WITH a, ident ORDER BY a.at ASC, ident ASC LIMIT $take"
    + _FIELDS
)
COUNT = _MATCHING + "RETURN count(a) AS total"

PRUNE = """
MATCH (a:AuditEntry) WHERE a.at < $before
WITH a LIMIT $batch
DELETE a
RETURN count(*) AS deleted
"""

ANONYMISE = """
MATCH (a:AuditEntry) WHERE $id IN a.customers
SET a.customers = [x IN a.customers | CASE WHEN x = $id THEN $anonymous ELSE x END]
RETURN count(a) AS changed
"""

LEGACY = """
MATCH (a:AuditEntry)
WITH a LIMIT $batch
RETURN id(a) AS node, a.keyId AS keyId, a.operation AS operation, a.customers AS customers,
       a.at AS at, coalesce(a.requestId, '') AS requestId
"""

MOVED = """
UNWIND $rows AS r
MERGE (a:AuditEntry {requestId: r.requestId, keyId: r.keyId, at: r.at})
SET a.operation = r.operation, a.customers = r.customers
"""
"""A MERGE, so that a batch written again (the process stopped before its entries were deleted
from the customers' graph) makes no second entry."""

FORGET_MOVED = "MATCH (a:AuditEntry) WHERE id(a) IN $nodes DELETE a"

PRUNE_BATCH = 10_000
MOVE_BATCH = 5_000
MAX_ENTRIES = 1_000


@dataclass(frozen=True)
class AuditEntry:
    key_id: str
    operation: str
    customers: list[str]
    at: int
    request_id: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex, compare=False)
    """The entry's own id (not compared: two entries saying the same are equal)."""


async def record(store: GraphStore, entries: list[AuditEntry]) -> None:
    """Write entries in one statement."""
    if entries:
        rows = [
            {"id": e.id, "keyId": e.key_id, "operation": e.operation, "customers": e.customers,
             "at": e.at, "requestId": e.request_id}
            for e in entries
        ]  # fmt: skip
        await store.audit_graph().write(RECORD, {"rows": rows})


async def entries(
    store: GraphStore,
    *,
    key_id: str | None = None,
    customer_id: str | None = None,
    since: int | None = None,
    until: int | None = None,
    first: int = 100,
) -> list[AuditEntry]:
    """Entries, newest first, of one key and/or about one customer, in a time range."""
    if not 1 <= first <= MAX_ENTRIES:
        raise ValueError(f"first must be between 1 and {MAX_ENTRIES}")
    params: dict[str, Any] = {"keyId": key_id, "customer": customer_id, "from": since,
                              "to": until, "first": first}  # fmt: skip
    return [_entry(r) for r in await store.audit_graph().read(ENTRIES, params)]


async def page(
    store: GraphStore,
    request: KeysetPage,
    *,
    key_id: str | None = None,
    customer_id: str | None = None,
    since: int | None = None,
    until: int | None = None,
) -> tuple[list[AuditEntry], int]:
    """A page of the entries `entries` would list (newest first; a cursor is an entry's (at,
    id)): up to `request.size + 1` of them in the log's order, for `KeysetPage.cut`, and how
    many entries match in all."""
    filters: dict[str, Any] = {"keyId": key_id, "customer": customer_id, "from": since,
                               "to": until}  # fmt: skip
    after = None if request.backwards else request.cursor
    before = request.cursor if request.backwards else None
    params = {
        **filters,
        "take": request.size + 1,
        "afterKey": after[0] if after else None,
        "afterId": after[1] if after else None,
        "beforeKey": before[0] if before else None,
        "beforeId": before[1] if before else None,
    }
    rows = await store.audit_graph().read(
        PAGE_BACKWARDS if request.backwards else PAGE_FORWARDS, params
    )
    found = [_entry(r) for r in rows]
    if request.backwards:
        found.reverse()  # read nearest first; listed in the log's order
    counted = await store.audit_graph().read(COUNT, filters)
    return found, int(counted[0]["total"]) if counted else 0


def _entry(row: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        row["keyId"], row["operation"], list(row["customers"] or []), row["at"],
        row["requestId"], row["id"],
    )  # fmt: skip


async def prune(store: GraphStore, before: int) -> int:
    """Delete the entries older than `before` (epoch ms), in batches; how many went."""
    deleted = 0
    while True:
        rows = await store.audit_graph().write(PRUNE, {"before": before, "batch": PRUNE_BATCH})
        count = int(rows[0]["deleted"]) if rows else 0
        deleted += count
        if count < PRUNE_BATCH:
            return deleted


async def anonymise(store: GraphStore, customer_id: str, anonymous_id: str) -> int:
    """Replace an erased customer's id by its anonymous id in every entry."""
    rows = await store.audit_graph().write(
        ANONYMISE, {"id": customer_id, "anonymous": anonymous_id}
    )
    return int(rows[0]["changed"]) if rows else 0


async def move_entries(main: GraphStore, trail: GraphStore) -> int:
    """Move the entries found in `main` (written there by an earlier release) to `trail`, the
    audit trail's graph, `MOVE_BATCH` at a time: each batch written to `trail` before it is
    deleted from `main`, so a stop at any moment loses none. How many were moved."""
    if trail is main:
        return 0
    moved = 0
    while True:
        rows = await main.read(LEGACY, {"batch": MOVE_BATCH})
        if not rows:
            return moved
        await trail.write(MOVED, {"rows": [{k: r[k] for k in r if k != "node"} for r in rows]})
        await main.write(FORGET_MOVED, {"nodes": [r["node"] for r in rows]})
        moved += len(rows)
