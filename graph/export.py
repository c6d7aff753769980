"""Right of access and portability (GDPR Articles 15 and 20): everything the graph holds about one
customer, as one JSON-ready document.

The customer's node with every property (profile, extra input columns, and the model scores
with the model version, as-of date and scoring time they were written with: `mlModelVersion`,
`mlAsOf`, `mlScoredAt`), its source records, orders with their lines and products, contacts,
social ties (the other customer by id only: their data is theirs), segment memberships, and
the audit entries naming the customer. Every node and relationship is read whole
(`properties(...)`), so a property added later is exported without a change here.
"""

from __future__ import annotations

from typing import Any

from crm_graph.graph import audit
from crm_graph.graph.filters import TIES
from crm_graph.graph.store import GraphStore

FORMAT = "crm-graph customer export 1"

CUSTOMER = "MATCH (c:Customer {id: $id}) RETURN properties(c) AS customer"

SOURCE_RECORDS = """
MATCH (:Customer {id: $id})-[h:HAS_SOURCE]->(s:SourceRecord)
RETURN properties(s) AS record, properties(h) AS link ORDER BY record.id
"""

ORDERS = """
MATCH (:Customer {id: $id})-[:PLACED]->(t:Transaction)
OPTIONAL MATCH (t)-[l:CONTAINS]->(p:Product)
WITH t, l, p ORDER BY p.id
WITH t, collect(CASE WHEN l IS NULL THEN null ELSE
     {line: properties(l), product: properties(p)} END) AS lines
RETURN properties(t) AS transaction, lines ORDER BY transaction.at, transaction.id
"""

CONTACTS = """
MATCH (:Customer {id: $id})-[h:HAD]->(i:Interaction)
RETURN properties(i) AS interaction ORDER BY interaction.at, interaction.id
"""

TIES_OF = f"""
MATCH (c:Customer {{id: $id}})-[r:{TIES}]-(o:Customer)
RETURN type(r) AS type, startNode(r) = c AS outgoing, o.id AS customerId,
       properties(r) AS properties
ORDER BY type, customerId
"""

SEGMENTS_OF = """
MATCH (:Customer {id: $id})-[m:IN_SEGMENT]->(s:Segment)
RETURN properties(s) AS segment, properties(m) AS membership ORDER BY segment.id
"""

MAX_AUDIT_ENTRIES = audit.MAX_ENTRIES


async def customer_export(store: GraphStore, customer_id: str) -> dict[str, Any] | None:
    """The export of one customer; None when there is no such customer."""
    rows = await store.read(CUSTOMER, {"id": customer_id})
    if not rows:
        return None
    params = {"id": customer_id}
    records = await store.read(SOURCE_RECORDS, params)
    orders = await store.read(ORDERS, params)
    contacts = await store.read(CONTACTS, params)
    ties = await store.read(TIES_OF, params)
    segments = await store.read(SEGMENTS_OF, params)
    entries = await audit.entries(store, customer_id=customer_id, first=MAX_AUDIT_ENTRIES)
    return {
        "format": FORMAT,
        "customer": rows[0]["customer"],
        "sourceRecords": [{**r["record"], "link": r["link"]} for r in records],
        "orders": [
            {**r["transaction"], "lines": [x for x in r["lines"] if x is not None]} for r in orders
        ],
        "contacts": [r["interaction"] for r in contacts],
        "ties": [
            {
                "type": r["type"],
                "direction": "OUTGOING" if r["outgoing"] else "INCOMING",
                "customerId": r["customerId"],
                **r["properties"],
            }
            for r in ties
        ],
        "segments": [{**r["segment"], "membership": r["membership"]} for r in segments],
        "auditEntries": [
            {"keyId": e.key_id, "operation": e.operation, "at": e.at, "requestId": e.request_id}
            for e in entries
        ],
    }
