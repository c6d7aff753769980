"""The outbox: every committed change leaves an `:Event` node, written by the same statement as
the change, numbered by one counter. So an event exists if and only if its change committed
(one statement is one transaction on both engines), whatever crashes.

The counter is one `(:EventSequence {id: 'events'})` node whose `value` the statement raises by
the number of events it writes, then numbers them `value - n + 1 .. value`. Raising it takes
the node's write lock until the transaction commits (Neo4j evaluates `SET x.v = x.v + n` under
the lock, so no update is lost; FalkorDB runs one write at a time): two writers never take the
same numbers, and a writer holding number 7 commits before one holding 8 can read the counter,
so a reader never sees 8 before 7 (`events_after` never skips an event that commits later).

An event carries ids and what changed (field names, amounts as text), never values of personal
data: `data` is a JSON object the writer builds from its rows (`payload`), kept as text on the
node (neither engine stores maps as properties). An amount the statement computes itself (an
order's total) travels as the event's `amount` and joins `data` as `total` when read; the
products an order holds, which the statement also reads, as `productIds` (sorted when read).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from crm_graph.graph.money import minor_digits
from crm_graph.graph.store import GraphStore

CUSTOMER_CREATED = "customer.created"
CUSTOMER_UPDATED = "customer.updated"
CUSTOMER_MERGED = "customer.merged"
CUSTOMER_ERASED = "customer.erased"
TRANSACTION_RECORDED = "transaction.recorded"
INTERACTION_RECORDED = "interaction.recorded"
TIE_RECORDED = "tie.recorded"
SCORES_WRITTEN = "scores.written"

EVENT_TYPES: tuple[str, ...] = (
    CUSTOMER_CREATED,
    CUSTOMER_UPDATED,
    CUSTOMER_MERGED,
    CUSTOMER_ERASED,
    TRANSACTION_RECORDED,
    INTERACTION_RECORDED,
    TIE_RECORDED,
    SCORES_WRITTEN,
)
"""The catalogue of event types: the one list of them."""

SEQUENCE_ID = "events"


@dataclass(frozen=True)
class Event:
    sequence: int
    type: str
    at_ms: int
    """Epoch milliseconds, when the statement that wrote it ran (it committed)."""
    customer_ids: tuple[str, ...]
    """Whose data it concerns (what scope checks look at); empty: no customer in particular
    (`scores.written`)."""
    data: dict[str, Any] = field(default_factory=dict)
    """What changed: ids, field names, amounts as text; never values of personal data."""


def payload(**data: Any) -> str:
    """An event's `data` as the writer passes it with its rows: compact JSON, keys sorted."""
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def outbox(events: str, carried: str = "") -> str:
    """The Cypher a write statement ends with to write its events: `events` is an expression
    (over the statement's variables at that point, aggregated to one row) giving a list of maps
    `{type, customerIds, data, amount?, productIds?}` (null entries are skipped); `carried`, the
    variables the statement's RETURN needs after it. Writes nothing, and takes no lock, when the
    list is empty; never changes the number of rows."""
    keep = f"{carried}, " if carried else ""
    return f"""
WITH {keep}[outboxEvent IN {events} WHERE outboxEvent IS NOT NULL] AS outbox
FOREACH (go IN CASE WHEN size(outbox) > 0 THEN [1] ELSE [] END |
  MERGE (sequence:EventSequence {{id: '{SEQUENCE_ID}'}})
  SET sequence.value = coalesce(sequence.value, 0) + size(outbox))
WITH {keep}outbox
OPTIONAL MATCH (sequence:EventSequence {{id: '{SEQUENCE_ID}'}})
WITH {keep}outbox, sequence.value - size(outbox) AS outboxBase
FOREACH (i IN range(0, size(outbox) - 1) |
  CREATE (:Event {{sequence: outboxBase + i + 1, type: outbox[i].type, at: timestamp(),
                  customerIds: outbox[i].customerIds, data: outbox[i].data,
                  amount: outbox[i].amount, productIds: outbox[i].productIds}}))
"""


RECORD_EVENT = (
    "WITH [{type: $type, customerIds: $customerIds, data: $data}] AS events"
    + outbox("events")
    + "RETURN size(outbox) AS written"
)
"""One event on its own: for a change made of many statements (a training's write-back), which
writes it after its last statement."""

EVENTS_AFTER = """
MATCH (e:Event)
WHERE e.sequence > $after AND ($types IS NULL OR e.type IN $types)
WITH e ORDER BY e.sequence LIMIT $limit
RETURN e.sequence AS sequence, e.type AS type, e.at AS at, e.customerIds AS customerIds,
       e.data AS data, e.amount AS amount, e.productIds AS productIds
"""

LAST_SEQUENCE = "MATCH (s:EventSequence {id: $id}) RETURN s.value AS value"

PRUNE_EVENTS = """
MATCH (e:Event) WHERE e.at < $before
WITH e LIMIT $batch
DETACH DELETE e
RETURN count(*) AS deleted
"""

PRUNE_BATCH = 5_000


def _amount_text(amount: Any) -> str:
    return f"{Decimal(str(amount)):.{minor_digits()}f}"


def event_of(row: dict[str, Any]) -> Event:
    data = json.loads(row["data"]) if row.get("data") else {}
    if row.get("amount") is not None:
        data["total"] = _amount_text(row["amount"])
    if row.get("productIds") is not None:
        data["productIds"] = sorted(str(p) for p in row["productIds"])
    return Event(
        sequence=int(row["sequence"]),
        type=str(row["type"]),
        at_ms=int(row["at"]),
        customer_ids=tuple(str(c) for c in row.get("customerIds") or ()),
        data=data,
    )


async def events_after(
    store: GraphStore,
    sequence: int,
    *,
    types: Collection[str] | None = None,
    limit: int = 100,
) -> list[Event]:
    """The events numbered after `sequence`, oldest first, at most `limit`; only of `types`
    when given (unknown types raise `ValueError`)."""
    if types is not None:
        unknown = sorted(set(types) - set(EVENT_TYPES))
        if unknown:
            raise ValueError(f"unknown event type(s) {', '.join(unknown)}; known: "
                             f"{', '.join(EVENT_TYPES)}")  # fmt: skip
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    rows = await store.read(
        EVENTS_AFTER,
        {
            "after": int(sequence),
            "types": sorted(types) if types is not None else None,
            "limit": int(limit),
        },
    )
    return [event_of(row) for row in rows]


async def last_sequence(store: GraphStore) -> int:
    """The number of the last event written (0: none yet)."""
    rows = await store.read(LAST_SEQUENCE, {"id": SEQUENCE_ID})
    return int(rows[0]["value"] or 0) if rows else 0


async def record(store: GraphStore, type: str, customer_ids: Sequence[str], **data: Any) -> None:
    """Write one event on its own (`RECORD_EVENT`)."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    await store.write(
        RECORD_EVENT,
        {"type": type, "customerIds": list(customer_ids), "data": payload(**data)},
    )


async def prune(store: GraphStore, before_ms: int) -> int:
    """Delete the events written before `before_ms` (epoch ms), in batches; how many went. The
    counter stays: numbers are never reused."""
    deleted = 0
    while True:
        rows = await store.write(PRUNE_EVENTS, {"before": before_ms, "batch": PRUNE_BATCH})
        n = int(rows[0]["deleted"]) if rows else 0
        deleted += n
        if n < PRUNE_BATCH:
            return deleted
