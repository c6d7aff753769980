"""The audit trail: who read or wrote which customers, when, in which request.

`(:AuditEntry {keyId, operation, customers, at, requestId})`: `customers` is a list of customer
ids, `operation` names the GraphQL operation type and its root fields (`query customer`,
`mutation eraseCustomer`); never a personal value. One entry per request that read or wrote
customers, written in one statement (`RECORD`) with the request's other entries. Entries older
than the retention are deleted by `prune` (the server prunes at most once an hour; `crm-graph
audit prune` on demand).

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

from dataclasses import dataclass
from typing import Any

from crm_graph.graph.store import GraphStore

RECORD = """
UNWIND $rows AS r
CREATE (a:AuditEntry {keyId: r.keyId, operation: r.operation, customers: r.customers,
                      at: r.at, requestId: r.requestId})
"""

ENTRIES = """
MATCH (a:AuditEntry)
WHERE ($keyId IS NULL OR a.keyId = $keyId) AND ($customer IS NULL OR $customer IN a.customers)
  AND ($from IS NULL OR a.at >= $from) AND ($to IS NULL OR a.at < $to)
WITH a ORDER BY a.at DESC, a.requestId DESC LIMIT $first
RETURN a.keyId AS keyId, a.operation AS operation, a.customers AS customers, a.at AS at,
       a.requestId AS requestId
"""

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


async def record(store: GraphStore, entries: list[AuditEntry]) -> None:
    """Write entries in one statement."""
    if entries:
        rows = [
            {"keyId": e.key_id, "operation": e.operation, "customers": e.customers, "at": e.at,
             "requestId": e.request_id}
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
    rows = await store.audit_graph().read(ENTRIES, params)
    return [
        AuditEntry(r["keyId"], r["operation"], list(r["customers"] or []), r["at"], r["requestId"])
        for r in rows
    ]


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
