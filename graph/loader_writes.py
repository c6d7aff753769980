"""The loader's Cypher (`crm-graph load`, and the API's upserts through the same writer), as
constants or pure builders. Values are always parameters; writes are `UNWIND $rows` batches, one
statement (one transaction) per batch, each writing its change events in the same statement.

Loader writes are idempotent: loading the same rows twice changes no count and no total (it does
write the rows' change events again: the outbox records every committed write).
Line items carry the id of the load that last wrote them (`loadId`): the first write of a load
replaces what an earlier load wrote, later writes in the same load add to it. So a transaction
whose lines are spread over several batches sums correctly, and a re-load (or a load restarted
after a crash) replaces instead of doubling.
"""

from __future__ import annotations

from crm_graph.graph import events
from crm_graph.graph.money import SUM_SCALE, money_add
from crm_graph.graph.schema import TIE_TYPES

_SOURCE_CANDIDATE = (
    "MATCH (s:SourceRecord {{{key}: k}})<-[:HAS_SOURCE]-(c:Customer) "
    "RETURN '{rule}' AS rule, k AS key, c.id AS customer, s.system AS system, "
    "[(c)-[:HAS_SOURCE]->(x:SourceRecord) | x.system] AS systems, keys(c) AS props"
)

IDENTITY_CANDIDATES = " UNION ALL ".join(
    f"UNWIND ${param} AS k " + _SOURCE_CANDIDATE.format(key=key, rule=rule)
    for param, key, rule in (
        ("sources", "id", "source"),
        ("emails", "emailKey", "email"),
        ("phones", "phoneKey", "phone"),
    )
)
"""Existing customers a batch of customer records may belong to: by source id (a record seen
before), by normalised email, by E.164 phone; with the systems already in each customer."""

CUSTOMERS_BY_SOURCE = (
    "UNWIND $ids AS k MATCH (s:SourceRecord {id: k})<-[:HAS_SOURCE]-(c:Customer) "
    "RETURN k AS source, c.id AS customer"
)
"""The (resolved) customer of each source customer id; unknown ids return no row."""

IDENTITY_FOOTPRINT = """
OPTIONAL MATCH (s1:SourceRecord)<-[:HAS_SOURCE]-(c1:Customer) WHERE s1.id IN $sourceIds
WITH count(s1) AS n1, collect(DISTINCT c1) AS owners1
UNWIND (CASE WHEN size(owners1) = 0 THEN [null] ELSE owners1 END) AS o1
OPTIONAL MATCH (o1)-[h1:HAS_SOURCE]->(:SourceRecord)
WITH n1, count(DISTINCT o1) AS k1, count(h1) AS held1
WITH [n1, k1, held1] AS footprint
OPTIONAL MATCH (s2:SourceRecord)<-[:HAS_SOURCE]-(c2:Customer) WHERE s2.emailKey IN $emails
WITH footprint, count(s2) AS n2, collect(DISTINCT c2) AS owners2
UNWIND (CASE WHEN size(owners2) = 0 THEN [null] ELSE owners2 END) AS o2
OPTIONAL MATCH (o2)-[h2:HAS_SOURCE]->(:SourceRecord)
WITH footprint, n2, count(DISTINCT o2) AS k2, count(h2) AS held2
WITH footprint + [n2, k2, held2] AS footprint
OPTIONAL MATCH (s3:SourceRecord)<-[:HAS_SOURCE]-(c3:Customer) WHERE s3.phoneKey IN $phones
WITH footprint, count(s3) AS n3, collect(DISTINCT c3) AS owners3
UNWIND (CASE WHEN size(owners3) = 0 THEN [null] ELSE owners3 END) AS o3
OPTIONAL MATCH (o3)-[h3:HAS_SOURCE]->(:SourceRecord)
WITH footprint, n3, count(DISTINCT o3) AS k3, count(h3) AS held3
WITH footprint + [n3, k3, held3] AS footprint"""
"""`footprint`: per rule (source id, email, phone), the stored records matching the batch's keys
(`$sourceIds`, `$emails`, `$phones`), their customers, and how many records those customers hold
in all; `loaders.identity.footprint` counts the same from the rows of `IDENTITY_CANDIDATES`. A
record written, moved or deleted since those rows were read changes it. Aggregates are named
before they go into a list (FalkorDB returns null for an aggregate inside a list literal)."""

_CUSTOMER_WRITES = """
MERGE (c:Customer {{id: r.id}})
SET c += r.props
WITH count(*) AS done
UNWIND {sources} AS s
MATCH (c:Customer {{id: s.customer}})
MERGE (x:SourceRecord {{id: s.id}})
SET x.system = coalesce(x.system, s.system), x.sourceId = s.id,
    x.emailKey = s.emailKey, x.phoneKey = s.phoneKey
MERGE (c)-[:HAS_SOURCE]->(x)
"""

UPSERT_CUSTOMERS = "UNWIND $customers AS r" + _CUSTOMER_WRITES.format(sources="$sources")
"""Resolved customers and their source records, written as given (the load benchmark's raw
statement); the loader and the API write with `UPSERT_CUSTOMERS_IF_UNCHANGED`.

A stored source record keeps its system: the system is the record's lineage, and a key limited
to `source:SYSTEM` sees the customers holding a record of that system, so relabelling a record
would take its customer out of (or into) such keys' scope. A write naming another system for a
stored record is refused before (`loaders.identity.resolve` reports it as a conflict); the
`coalesce` keeps the stored system even if one got through."""

_CUSTOMER_WRITES_WITH_EVENTS = f"""
OPTIONAL MATCH (before:Customer {{id: r.id}})
WITH r, before IS NULL AS created
MERGE (c:Customer {{id: r.id}})
SET c += r.props
WITH count(*) AS done,
     collect({{type: CASE WHEN created THEN '{events.CUSTOMER_CREATED}'
                    ELSE '{events.CUSTOMER_UPDATED}' END,
              customerIds: [r.id], data: r.event}}) AS customerEvents
CALL {{ WITH done
UNWIND (CASE WHEN done > 0 THEN $sources ELSE [] END) AS s
MATCH (c:Customer {{id: s.customer}})
MERGE (x:SourceRecord {{id: s.id}})
SET x.system = coalesce(x.system, s.system), x.sourceId = s.id,
    x.emailKey = s.emailKey, x.phoneKey = s.phoneKey
MERGE (c)-[:HAS_SOURCE]->(x)
RETURN count(*) AS written }}
"""
"""`_CUSTOMER_WRITES` collecting one event per customer (the sources are written in a subquery,
so that the events are carried on one row, not copied onto every source's)."""

UPSERT_CUSTOMERS_IF_UNCHANGED = (
    IDENTITY_FOOTPRINT
    + "\nWITH footprint = $footprint AS unchanged"
    + "\nUNWIND (CASE WHEN unchanged THEN $customers ELSE [] END) AS r"
    + _CUSTOMER_WRITES_WITH_EVENTS
    + events.outbox("CASE WHEN written > 0 THEN customerEvents ELSE [] END", "written")
    + "RETURN written"
)
"""`UPSERT_CUSTOMERS`, only if the identity records the resolution was computed from are still as
they were read (`$footprint`, from the candidates; keys `$sourceIds`, `$emails`, `$phones`).
`written` is 0 when another writer changed them in between: nothing was written (no event
either), and the batch must be resolved again. Each customer row (`{id, props, event}`, `event`
its `events.payload`) writes one `customer.created` or `customer.updated` event. One
statement, so the check and the writes are one transaction; on FalkorDB, which runs one write at
a time, two writers can never both resolve the same person into a new customer."""

UPSERT_PRODUCTS = """
UNWIND $rows AS r
MERGE (p:Product {id: r.id})
SET p += r.props
WITH p, r WHERE r.category IS NOT NULL
MERGE (k:Category {name: r.category})
WITH p, k
OPTIONAL MATCH (p)-[old:IN_CATEGORY]->(o:Category) WHERE o.name <> k.name
DELETE old
WITH DISTINCT p, k
MERGE (p)-[:IN_CATEGORY]->(k)
"""

UPSERT_TRANSACTIONS = (
    """
UNWIND $orders AS o
MATCH (c:Customer {id: o.customer})
MERGE (t:Transaction {id: o.id})
SET t.at = CASE WHEN t.loadId = $load AND t.at < o.at THEN t.at ELSE o.at END,
    t.channel = coalesce(o.channel, t.channel),
    t.otherAmount = CASE WHEN t.loadId = $load THEN {other} ELSE o.other END,
    t.loadId = $load
WITH o, c, t
OPTIONAL MATCH (t)-[old:CONTAINS]->(stored:Product)
WITH o, c, t, collect(DISTINCT {product: stored.id, quantity: old.quantity,
                                same: old.loadId = $load,
                                thousandths: round(old.amount * {scale})}) AS found
WITH o, c, t, [b IN found WHERE b.product IS NOT NULL] AS before,
     [l IN o.lines | l.product] AS written
WITH o, c, t,
     [l IN o.lines | {
        quantity: l.quantity + reduce(q = 0, b IN [x IN before
                                      WHERE x.product = l.product AND x.same] | q + b.quantity),
        thousandths: round(l.amount * {scale}) + reduce(m = 0, b IN [x IN before
                                      WHERE x.product = l.product AND x.same] | m + b.thousandths)
     }]
     + [b IN before WHERE NOT b.product IN written
        | {quantity: b.quantity, thousandths: b.thousandths}] AS lines,
     written + [b IN before WHERE NOT b.product IN written | b.product] AS products
SET t.total = (reduce(m = 0, l IN lines | m + l.thousandths)
               + round(coalesce(t.otherAmount, 0) * {scale})) / {scale}.0,
    t.itemCount = reduce(q = 0, l IN lines | q + l.quantity)
WITH o, c, t, products
OPTIONAL MATCH (t)<-[placed:PLACED]-(prev) WHERE prev.id <> c.id
DELETE placed
WITH DISTINCT o, c, t, products
MERGE (c)-[:PLACED]->(t)
WITH collect({type: '{event}', customerIds: [c.id], data: o.event, amount: t.total,
              productIds: products}) AS orderEvents
CALL { WITH orderEvents
UNWIND $items AS i
MATCH (t:Transaction {id: i.transaction})
WITH i, t
MATCH (p:Product {id: i.product})
MERGE (t)-[e:CONTAINS]->(p)
SET e.quantity = CASE WHEN e.loadId = $load THEN e.quantity + i.quantity ELSE i.quantity END,
    e.amount = CASE WHEN e.loadId = $load THEN {amount} ELSE i.amount END,
    e.unitPrice = i.unitPrice,
    e.loadId = $load
WITH t, p, collect(e) AS written
FOREACH (doubled IN tail(written) | DELETE doubled)
RETURN count(*) AS lineItems }
""".replace("{other}", money_add("t.otherAmount", "o.other"))
    .replace("{amount}", money_add("e.amount", "i.amount"))
    .replace("{scale}", str(SUM_SCALE))
    .replace("{event}", events.TRANSACTION_RECORDED)
    + events.outbox("orderEvents")
)
"""Orders with their line items, totals and `transaction.recorded` events, in one statement (one
transaction on both engines): an order is never stored without its lines, its total or its
event, nor an event without its order (a crash between two statements once left orders with
neither total nor event).

Rows: `$orders`, one per transaction in the batch (`{id, customer, at, channel, other, event,
lines}`: `other` the amount of lines that name no product, `event` its `events.payload`,
`lines` the batch's line items of this order aggregated per product, `{product, quantity,
amount}`); `$items`, the same line items flat (`{transaction, product, quantity, amount,
unitPrice}`, in lock order). An order's time is its earliest line's. The products must be
stored: a line naming an unknown one is rejected before (never a nameless Product made up).

The total is computed from the order's stored lines as read before this statement writes any
(FalkorDB does not show a traversal the relationships created earlier in the same statement;
Neo4j does, so reading after the writes would differ between the engines) and the batch's own
lines, as the line writes below add them up: a stored line of the same load is added to, one of
an earlier load is replaced. The event names every product the order holds after the statement
(its stored lines and the batch's) with the total, so an order whose lines came in several
batches is recorded whole each time, the last event its final state. In thousandths, exact
(`graph.money`). The first SET takes the order's write lock before its lines are read: on Neo4j,
whose reads take no locks, a writer changing the same order's lines concurrently has then
committed, so the total is never computed from lines another writer is replacing.

One line per product: should an order hold two CONTAINS relationships to one product (a doubled
line, seen under 16 concurrent `crm-graph serve` writers of one order, cause not found), the
line MERGE matches both, sets both, and keeps one; equal stored lines count once in the total.

The line writes match the order and then (`WITH i, t`) the product: on FalkorDB the two in one
`MATCH` are a cartesian product whose every record carried `orderEvents`, the batch's whole list
of events, so a batch of n lines cost n copies of an n-long list: 6.5 s a batch of 3,768 lines of
Online Retail, 0.35 s with the list left out of the records (`python -m bench load`, and
`tests/loaders/test_online_retail.py`, 55 s to about 7 s on FalkorDB).
"""

UPSERT_INTERACTIONS = (
    """
UNWIND $rows AS r
MATCH (c:Customer {id: r.customer})
MERGE (i:Interaction {id: r.id})
SET i += r.props
WITH r, c, i
OPTIONAL MATCH (i)<-[had:HAD]-(prev) WHERE prev.id <> c.id
DELETE had
WITH DISTINCT r, c, i
MERGE (c)-[:HAD]->(i)
WITH collect({type: '{event}', customerIds: [c.id], data: r.event}) AS contactEvents
""".replace("{event}", events.INTERACTION_RECORDED)
    + events.outbox("contactEvents")
)
"""Rows `{id, customer, props, event}`: one `interaction.recorded` event each."""


def upsert_ties(tie_type: str) -> str:
    """Social ties of one type (a relationship type cannot be a parameter, so it is checked
    against the model's list and spelled into the statement). Rows `{source, target, since,
    weight, event}`: one `tie.recorded` event each."""
    if tie_type not in TIE_TYPES:
        raise ValueError(f"unknown social tie type {tie_type!r}")
    return f"""
UNWIND $rows AS r
MATCH (a:Customer {{id: r.source}}), (b:Customer {{id: r.target}})
MERGE (a)-[t:{tie_type}]->(b)
SET t.since = coalesce(r.since, t.since), t.weight = coalesce(r.weight, t.weight)
WITH collect({{type: '{events.TIE_RECORDED}', customerIds: [a.id, b.id], data: r.event}})
     AS tieEvents
""" + events.outbox("tieEvents")


COUNT_CUSTOMERS = "MATCH (c:Customer) RETURN count(c) AS count"
COUNT_NODES = "MATCH (n) RETURN labels(n)[0] AS label, count(n) AS count ORDER BY label"
COUNT_RELATIONSHIPS = "MATCH ()-[r]->() RETURN type(r) AS type, count(r) AS count ORDER BY type"


# -- what a load finds already stored (its new / updated counts) ----------------------------------

EXISTING_SOURCE_IDS = "UNWIND $ids AS id MATCH (s:SourceRecord {id: id}) RETURN s.id AS id"
"""Which of the source customer ids are stored (the customers' records a load updates)."""
EXISTING_PRODUCTS = "UNWIND $ids AS id MATCH (p:Product {id: id}) RETURN p.id AS id"
EXISTING_TRANSACTIONS = "UNWIND $ids AS id MATCH (t:Transaction {id: id}) RETURN t.id AS id"
EXISTING_INTERACTIONS = "UNWIND $ids AS id MATCH (i:Interaction {id: id}) RETURN i.id AS id"


ANY_STORED = {
    "customers": "MATCH (s:SourceRecord) RETURN s.id AS id LIMIT 1",
    "products": "MATCH (p:Product) RETURN p.id AS id LIMIT 1",
    "transactions": "MATCH (t:Transaction) RETURN t.id AS id LIMIT 1",
    "interactions": "MATCH (i:Interaction) RETURN i.id AS id LIMIT 1",
    "social_ties": (
        f"MATCH (:Customer)-[r:{'|'.join(TIE_TYPES)}]->(:Customer) RETURN 1 AS id LIMIT 1"
    ),
}
"""Whether anything of a file's kind is stored yet: when nothing is, a load's rows are new or
duplicates without a lookup per batch."""


def existing_ties(tie_type: str) -> str:
    """Which of the (source, target) pairs `$ids` (maps with `source`, `target`) are already
    tied by a relationship of this type."""
    if tie_type not in TIE_TYPES:
        raise ValueError(f"unknown social tie type {tie_type!r}")
    return f"""
UNWIND $ids AS k
MATCH (:Customer {{id: k.source}})-[:{tie_type}]->(:Customer {{id: k.target}})
RETURN k.source AS source, k.target AS target
"""
