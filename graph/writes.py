"""Writes the API makes beyond the loader's upserts: merging customers by hand, erasing one.

A merge runs as a short sequence of statements, each idempotent, so that running the same merge
again after a failure finishes the job (the customers to remove are deleted last). An erasure is
one statement.
"""

from __future__ import annotations

import uuid
from typing import Any

from crm_graph.graph import audit, events
from crm_graph.graph.filters import TIES
from crm_graph.graph.schema import TIE_TYPES
from crm_graph.graph.store import GraphStore

MERGE_PREVIEW = f"""
UNWIND $ids AS id
MATCH (c:Customer {{id: id}})
RETURN id, properties(c) AS customer,
       size([(c)-[:PLACED]->(mt:Transaction) | 1]) AS orders,
       size([(c)-[:HAD]->(mi:Interaction) | 1]) AS interactions,
       size([(c)-[mr:{TIES}]-(mo:Customer) | 1]) AS ties,
       [(c)-[:HAS_SOURCE]->(ms:SourceRecord) | ms.system] AS systems
"""

_MOVE_OWNED = """
MATCH (keep:Customer {{id: $keep}})
UNWIND $others AS other
MATCH (gone:Customer {{id: other}})-[r:{rel}]->(x:{label})
MERGE (keep)-[:{rel}]->(x)
DELETE r
"""

_MOVE_TIES_OUT = """
MATCH (keep:Customer {{id: $keep}})
UNWIND $others AS other
MATCH (gone:Customer {{id: other}})-[r:{tie}]->(o:Customer)
WHERE o.id <> $keep AND NOT o.id IN $others
MERGE (keep)-[n:{tie}]->(o)
SET n.since = coalesce(n.since, r.since), n.weight = coalesce(n.weight, r.weight)
DELETE r
"""

_MOVE_TIES_IN = """
MATCH (keep:Customer {{id: $keep}})
UNWIND $others AS other
MATCH (o:Customer)-[r:{tie}]->(gone:Customer {{id: other}})
WHERE o.id <> $keep AND NOT o.id IN $others
MERGE (o)-[n:{tie}]->(keep)
SET n.since = coalesce(n.since, r.since), n.weight = coalesce(n.weight, r.weight)
DELETE r
"""

MERGE_AND_RECORD = (
    """
MATCH (keep:Customer {id: $keep})
UNWIND range(0, size($others) - 1) AS i
MATCH (gone:Customer {id: $others[i]})
WITH keep, gone, """
    + events.former_scope("i + 1", "gone")
    + """ AS former,
     [(gone)-[:HAS_SOURCE]->(s:SourceRecord) | s] AS sources,
     [(gone)-[:IN_SEGMENT]->(g:Segment) | g] AS segments
FOREACH (s IN sources | MERGE (keep)-[:HAS_SOURCE]->(s))
FOREACH (g IN segments | MERGE (keep)-[:IN_SEGMENT]->(g))
DETACH DELETE gone
WITH collect(former) AS formers, count(*) AS deleted
WITH CASE WHEN deleted > 0 THEN [{type: '"""
    + events.CUSTOMER_MERGED
    + """', customerIds: [$keep] + $others, data: $event,
  formerScope: reduce(acc = [], f IN formers | acc + f)}] ELSE [] END AS mergeEvents
"""
    + events.outbox("mergeEvents")
)
"""Move the others' source records and segments onto the kept customer, delete the others, and
with them write the `customer.merged` event, recording the systems and segments the others had
(`formerScope`: a partner scoped by them still receives the merge). One statement: what they
had is read where it is removed. None when a merge run again finds them deleted already (the
first run wrote it); nothing when the kept customer is gone."""

MERGE_STATEMENTS = (
    _MOVE_OWNED.format(rel="PLACED", label="Transaction"),
    _MOVE_OWNED.format(rel="HAD", label="Interaction"),
    *(_MOVE_TIES_OUT.format(tie=t) for t in TIE_TYPES),
    *(_MOVE_TIES_IN.format(tie=t) for t in TIE_TYPES),
    "MATCH (keep:Customer {id: $keep}) SET keep += $fill",
    MERGE_AND_RECORD,
)
"""Move everything the others own or are tied to onto the kept customer (ties between the
merged customers themselves would become self-ties and go), fill the kept profile's gaps, then
`MERGE_AND_RECORD`."""


async def merge_preview(store: GraphStore, ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = await store.read(MERGE_PREVIEW, {"ids": ids})
    return {row["id"]: row for row in rows}


def merged_profile(keep: dict[str, Any], others: list[dict[str, Any]]) -> dict[str, Any]:
    """The kept customer's values win; the others (in the order given) fill its gaps."""
    profile = dict(keep)
    for other in others:
        for name, value in other.items():
            if profile.get(name) is None and value is not None:
                profile[name] = value
    return profile


async def merge_customers(
    store: GraphStore, keep: str, others: list[str], fill: dict[str, Any]
) -> None:
    event = events.payload(keptId=keep, mergedIds=list(others), fields=sorted(fill))
    params = {"keep": keep, "others": others, "fill": fill, "event": event}
    for statement in MERGE_STATEMENTS:
        await store.write(statement, params)


ERASE_CUSTOMER = (
    "MATCH (c:Customer {id: $id})\n"
    f"WITH c, {events.former_scope('0', 'c')} AS former\n"
    "CALL { WITH c MATCH (c)-[:HAD]->(i:Interaction) DETACH DELETE i "
    "RETURN count(*) AS contacts }\n"
    "CALL { WITH c MATCH (c)-[:HAS_SOURCE]->(s:SourceRecord) DETACH DELETE s "
    "RETURN count(*) AS sources }\n"
    f"CALL {{ WITH c MATCH (c)-[r:{TIES}]-() DELETE r RETURN count(*) AS ties }}\n"
    "CALL { WITH c MATCH (c)-[r:IN_SEGMENT]->() DELETE r RETURN count(*) AS segments }\n"
    "WITH c, former, c.country AS country\n"
    "SET c = {id: $anonymous, erased: true, erasedAt: $now, country: country}\n"
    f"WITH collect({{type: '{events.CUSTOMER_ERASED}', customerIds: [$id], data: $event, "
    "formerScope: former}) AS eraseEvents"
    + events.outbox("eraseEvents")
    + "RETURN size(outbox) AS erased"
)
"""Right to be forgotten: contacts (free text), source records (their ids and keys) and ties go;
the profile is replaced by an anonymous id, the country and when it was erased. Orders stay on
the anonymous customer so that revenue totals do not change. One statement with its
`customer.erased` event, naming the erased id (so that partners can erase their copy) and the
anonymous one, and beside them (`formerScope`, read before anything goes) the systems and
segments the customer had, so that partners scoped by them receive it: a customer is erased with
its event, or not at all."""


async def erase_customer(store: GraphStore, customer_id: str, now_ms: int) -> str | None:
    """Erase a customer; return the anonymous id their orders now hang from (None: unknown)."""
    found = await store.read("MATCH (c:Customer {id: $id}) RETURN c.id AS id", {"id": customer_id})
    if not found:
        return None
    anonymous = f"erased-{uuid.uuid4().hex[:16]}"
    event = events.payload(customerId=customer_id, anonymousId=anonymous)
    params = {"id": customer_id, "anonymous": anonymous, "now": now_ms, "event": event}
    await store.write(ERASE_CUSTOMER, params)
    await audit.anonymise(store, customer_id, anonymous)  # the trail keeps no link to them
    return anonymous
