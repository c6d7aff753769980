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
products an order holds, which the statement also reads, as `productIds` (sorted when read). A
statement that removes customers (erase, merge) records beside `data`, in `formerScope`, the
source systems and segments they had, for scope checks only (`in_scope`).

Readers poll with `read_after`: windows of sequences on the unique index of `Event.sequence`,
so a poll examines a bounded number of events however long the outbox is (on FalkorDB a long
read holds up the writes queued behind it, and every read behind those).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from crm_graph.graph.access import CustomerScope
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
    former_scope: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """For the customers the change removed (erased, merged away): the source systems and
    segments they had before it, as `source:<system>` and `segment:<id or name>`, so that a
    scope of systems or segments can still tell whether it saw them (`in_scope`). Never given
    to a subscriber."""


@dataclass(frozen=True)
class Page:
    """What `read_after` found: its events, and how far it looked."""

    events: list[Event]
    reached: int
    """The last sequence looked at: a reader that wants nothing else up to it may move its
    position there (never past `last`)."""
    last: int
    """The last sequence written when it looked (caught up: `reached >= last`)."""

    @property
    def caught_up(self) -> bool:
        return self.reached >= self.last


def payload(**data: Any) -> str:
    """An event's `data` as the writer passes it with its rows: compact JSON, keys sorted."""
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def outbox(events: str, carried: str = "") -> str:
    """The Cypher a write statement ends with to write its events: `events` is an expression
    (over the statement's variables at that point, aggregated to one row) giving a list of maps
    `{type, customerIds, data, amount?, productIds?, formerScope?}` (null entries are skipped);
    `carried`, the variables the statement's RETURN needs after it. Writes nothing, and takes no
    lock, when the list is empty; never changes the number of rows."""
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
                  amount: outbox[i].amount, productIds: outbox[i].productIds,
                  formerScope: outbox[i].formerScope}}))
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
WHERE e.sequence > $after AND e.sequence <= $upto
WITH e WHERE $types IS NULL OR e.type IN $types
WITH e ORDER BY e.sequence LIMIT $limit
RETURN e.sequence AS sequence, e.type AS type, e.at AS at, e.customerIds AS customerIds,
       e.data AS data, e.amount AS amount, e.productIds AS productIds,
       e.formerScope AS formerScope
"""
"""The events of one window of sequences (`$after` < sequence <= `$upto`), oldest first: the
range is a seek on the unique index of `Event.sequence` on both engines, so a statement
examines at most `$upto - $after` events however long the outbox is (a range with no upper
bound made FalkorDB find and sort every event after `$after`, and a type filter made both
engines read every event of other types after it: `python -m bench outbox`)."""

WINDOW = 1_000
"""Sequences one outbox statement looks at (`EVENTS_AFTER`)."""
WINDOWS = 10
"""Windows `read_after` looks at before it answers, when they hold nothing for its reader."""

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
    customer_ids = tuple(str(c) for c in row.get("customerIds") or ())
    return Event(
        sequence=int(row["sequence"]),
        type=str(row["type"]),
        at_ms=int(row["at"]),
        customer_ids=customer_ids,
        data=data,
        former_scope=_former_scope(customer_ids, row.get("formerScope")),
    )


def _former_scope(customer_ids: Sequence[str], tags: Any) -> dict[str, frozenset[str]]:
    """`formerScope` as stored (`"<index in customerIds> <tag>"`) by customer id."""
    found: dict[str, set[str]] = {}
    for tag in tags or ():
        index, _, value = str(tag).partition(" ")
        if index.isdigit() and int(index) < len(customer_ids) and value:
            found.setdefault(customer_ids[int(index)], set()).add(value)
    return {c: frozenset(t) for c, t in found.items()}


def former_scope(index: str, customer: str) -> str:
    """The Cypher expression of a `formerScope` list for the customer bound to `customer`, at
    `index` (an expression) in the event's `customerIds`: its source systems and segments (ids
    and names) as they are when the statement runs, before it removes them."""
    return (
        f"[x IN [({customer})-[:HAS_SOURCE]->(fsSrc:SourceRecord) | 'source:' + fsSrc.system]"
        f" + [({customer})-[:IN_SEGMENT]->(fsSeg:Segment) | 'segment:' + fsSeg.id]"
        f" + [({customer})-[:IN_SEGMENT]->(fsSeg2:Segment) | 'segment:' + fsSeg2.name]"
        f" WHERE x IS NOT NULL | toString({index}) + ' ' + x]"
    )


def _checked_types(types: Collection[str] | None) -> list[str] | None:
    if types is None:
        return None
    unknown = sorted(set(types) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown event type(s) {', '.join(unknown)}; known: "
                         f"{', '.join(EVENT_TYPES)}")  # fmt: skip
    return sorted(types)


async def read_after(
    store: GraphStore,
    sequence: int,
    *,
    types: Collection[str] | None = None,
    limit: int = 100,
    window: int = WINDOW,
    windows: int = WINDOWS,
) -> Page:
    """The events numbered after `sequence`, oldest first, at most `limit`, only of `types`
    when given (unknown types raise `ValueError`), looking at `window` sequences per statement
    and at most `windows` windows: what one poll of a reader costs stays bounded however long
    the outbox, and a reader of some types only moves on past the events of others (to
    `Page.reached`) instead of reading them again at every poll."""
    wanted = _checked_types(types)
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if window < 1 or windows < 1:
        raise ValueError(f"window and windows must be at least 1, not {window}, {windows}")
    last = await last_sequence(store)
    reached = int(sequence)
    found: list[Event] = []
    for _ in range(windows):
        if reached >= last:
            break
        upto = min(reached + window, last)
        rows = await store.read(
            EVENTS_AFTER,
            {"after": reached, "upto": upto, "types": wanted, "limit": limit - len(found)},
        )
        found.extend(event_of(row) for row in rows)
        if len(found) >= limit:
            return Page(found, found[-1].sequence, last)
        reached = upto
        if found:
            break
    return Page(found, max(reached, int(sequence)), last)


async def events_after(
    store: GraphStore,
    sequence: int,
    *,
    types: Collection[str] | None = None,
    limit: int = 100,
) -> list[Event]:
    """The events numbered after `sequence`, oldest first, at most `limit`; only of `types`
    when given (unknown types raise `ValueError`): `read_after` until it has `limit` or has
    looked up to the last event (each statement bounded; the whole may read the backlog: for
    tools and tests, not for a poller)."""
    found: list[Event] = []
    position = sequence
    while True:
        page = await read_after(store, position, types=types, limit=limit - len(found))
        found.extend(page.events)
        position = page.reached
        if len(found) >= limit or page.caught_up:
            return found


def stored_in_scope_query(scope: CustomerScope) -> str:
    """Which of `$ids` are stored customers, and whether `scope` sees each (its `params`)."""
    return (
        "UNWIND $ids AS id MATCH (c:Customer {id: id})\n"
        f"RETURN DISTINCT id, {scope.expression('c')} AS inScope"
    )


async def in_scope(store: GraphStore, scope: CustomerScope, batch: Sequence[Event]) -> set[int]:
    """The sequences of the events of `batch` that `scope` sees, in one statement for the whole
    batch (none for everyone, or when every customer named is in the scope's list): an event
    is seen when every customer it names is in scope (one naming none only by everyone). A
    customer is in scope when the scope lists its id; else, when it is stored, when the scope's
    predicate keeps it now; else (erased or merged away) when the systems or segments it had
    before (`Event.former_scope`) meet the scope's."""
    if scope.everyone:
        return {e.sequence for e in batch}
    listed = set(scope.ids)
    asked = sorted({c for e in batch for c in e.customer_ids} - listed)
    stored: dict[str, bool] = {}
    if asked and (scope.systems or scope.segments):
        rows = await store.read(stored_in_scope_query(scope), {"ids": asked, **scope.params})
        stored = {str(r["id"]): bool(r["inScope"]) for r in rows}
    had = {f"source:{s}" for s in scope.systems} | {f"segment:{s}" for s in scope.segments}

    def sees(event: Event, customer: str) -> bool:
        if customer in listed:
            return True
        if customer in stored:
            return stored[customer]
        return not had.isdisjoint(event.former_scope.get(customer, ()))

    return {e.sequence for e in batch if e.customer_ids and all(sees(e, c) for c in e.customer_ids)}


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
