"""Aggregates for analysts: revenue, orders and customers by month, category, country, segment.

Months are computed in the store from epoch milliseconds with integer civil-calendar arithmetic
(days to year and month), which both engines evaluate the same way: no date functions needed.
"""

from __future__ import annotations

from typing import Any

from crm_graph.graph.analytics_queries import CHURN_RISK_BUCKETS, LAST_MODEL_CARD, SEGMENT_MAP
from crm_graph.graph.money import exact_sums
from crm_graph.graph.store import GraphStore

_MONTH_OF_T = """
WITH c, t, toInteger(floor(t.at / 86400000.0)) + 719468 AS z
WITH c, t, z, (CASE WHEN z >= 0 THEN z ELSE z - 146096 END) / 146097 AS era
WITH c, t, era, z - era * 146097 AS doe
WITH c, t, era, doe, (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365 AS yoe
WITH c, t, yoe + era * 400 AS y0, doe - (365 * yoe + yoe / 4 - yoe / 100) AS doy
WITH c, t, y0, (5 * doy + 2) / 153 AS mp
WITH c, t, y0 + CASE WHEN mp >= 10 THEN 1 ELSE 0 END AS year,
     CASE WHEN mp < 10 THEN mp + 3 ELSE mp - 9 END AS month
WITH c, t, toString(year) + '-' + CASE WHEN month < 10 THEN '0' ELSE '' END + toString(month)
     AS key
"""

_IN_RANGE = "WHERE ($from IS NULL OR t.at >= $from) AND ($to IS NULL OR t.at < $to)"

REVENUE = {  # every sum of money exact (`graph.money`)
    "MONTH": f"""
MATCH (c:Customer)-[:PLACED]->(t:Transaction) {_IN_RANGE}
{_MONTH_OF_T}
RETURN key, sum(t.total) AS revenue, count(t) AS orders, count(DISTINCT c) AS customers
ORDER BY key
""",
    "COUNTRY": f"""
MATCH (c:Customer)-[:PLACED]->(t:Transaction) {_IN_RANGE}
WITH c, t, coalesce(c.country, '(none)') AS key
RETURN key, sum(t.total) AS revenue, count(t) AS orders, count(DISTINCT c) AS customers
ORDER BY revenue DESC, key
""",
    "CATEGORY": f"""
MATCH (c:Customer)-[:PLACED]->(t:Transaction)-[e:CONTAINS]->(p:Product) {_IN_RANGE}
WITH c, t, e, coalesce(p.category, '(none)') AS key
RETURN key, sum(e.amount) AS revenue, count(DISTINCT t) AS orders,
       count(DISTINCT c) AS customers
ORDER BY revenue DESC, key
""",
    "SEGMENT": f"""
MATCH (s:Segment)<-[:IN_SEGMENT]-(c:Customer)-[:PLACED]->(t:Transaction) {_IN_RANGE}
WITH c, t, coalesce(s.name, s.id) AS key
RETURN key, sum(t.total) AS revenue, count(t) AS orders, count(DISTINCT c) AS customers
ORDER BY revenue DESC, key
""",
}
REVENUE = {by: exact_sums(statement) for by, statement in REVENUE.items()}
"""Revenue by each dimension. By category, revenue is the lines' amounts (lines naming no product
are not in any category); by segment a customer counts in every segment they belong to."""


async def revenue(
    store: GraphStore, by: str, since: int | None, until: int | None
) -> list[dict[str, Any]]:
    return await store.read(REVENUE[by], {"from": since, "to": until})


async def churn_risk_distribution(store: GraphStore, buckets: int) -> list[dict[str, Any]]:
    """Every one of `buckets` equal slices of churn risk over [0, 1], lowest first, with how many
    customers the last training put in it (empty slices included, with 0)."""
    counts = {
        int(r["bucket"]): int(r["customers"])
        for r in await store.read(CHURN_RISK_BUCKETS, {"buckets": buckets})
    }
    return [
        {"low": i / buckets, "high": (i + 1) / buckets, "customers": counts.get(i, 0)}
        for i in range(buckets)
    ]


async def segment_map(store: GraphStore, model: str, sample: int) -> dict[str, Any]:
    """The segments map of the last segmentation: at most `sample` customers' points, every
    n-th by id when there are more (the same customers on every call), how many there are in
    all, and the share of variance each axis explains (from the segmentation's model card)."""
    rows = await store.read(SEGMENT_MAP, {"model": model})
    step = max(1, -(-len(rows) // sample)) if rows else 1
    cards = await store.read(LAST_MODEL_CARD, {"name": model})
    return {
        "points": rows[::step],
        "total": len(rows),
        "card": dict(cards[0]["card"]) if cards else None,
    }
