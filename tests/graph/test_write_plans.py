"""The loader's per-batch writes touch only the rows of the batch: no step of their plans reads
every node of a label. On Neo4j, `OPTIONAL MATCH (prev:Customer)-[:PLACED]->(t)` was planned as a
scan of every customer for each order (1,000 customers: 654,000 rows for a batch of 654 orders;
20k customers: 107.6 s to load), so the previous owner is now found from the order."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from crm_graph.graph import analytics_queries, loader_writes, writes
from crm_graph.graph.dialect import WRITE_LOCK
from crm_graph.graph.schema import AUDIT_SCHEMA, CRM_SCHEMA, MAIN_SCHEMA, TIE_TYPES
from crm_graph.graph.store import GraphStore

SCANS = ("AllNodesScan", "NodeByLabelScan", "NodeIndexScan", "DirectedRelationshipTypeScan",
         "UndirectedRelationshipTypeScan")  # fmt: skip
BATCH_WRITES = {
    "UPSERT_TRANSACTIONS": loader_writes.UPSERT_TRANSACTIONS,
    "UPSERT_INTERACTIONS": loader_writes.UPSERT_INTERACTIONS,
    "UPSERT_PRODUCTS": loader_writes.UPSERT_PRODUCTS,
    "UPSERT_CUSTOMERS": loader_writes.UPSERT_CUSTOMERS,
    "CUSTOMERS_BY_SOURCE": loader_writes.CUSTOMERS_BY_SOURCE,
    "upsert_ties(KNOWS)": loader_writes.upsert_ties("KNOWS"),
}


ORDERS = [{"id": f"t{n}", "customer": str(n), "at": 0, "channel": None, "other": 0.0,
           "event": "{}", "lines": [{"product": "p", "quantity": 1.0, "amount": 1.0}]}
          for n in range(1, 501)]  # fmt: skip
PARAMETERS = {
    "orders": ORDERS, "load": "l", "ids": [o["id"] for o in ORDERS],
    "items": [{"transaction": o["id"], "product": "p", "quantity": 1.0, "amount": 1.0,
               "unitPrice": 1.0} for o in ORDERS],
    "rows": [{"id": str(n), "customer": str(n), "props": {}, "category": None, "source": "1",
              "target": "2", "since": None, "weight": None, "event": "{}"}
             for n in range(1, 501)],
    "customers": [{"id": str(n), "props": {}} for n in range(1, 501)],
    "sources": [{"id": str(n), "customer": str(n), "system": "s", "emailKey": None,
                 "phoneKey": None} for n in range(1, 501)],
}  # fmt: skip
"""Batches of the loader's size and shape: the planner weighs the lists' lengths."""


def _operators(plan: Any) -> list[str]:
    found = [plan["operatorType"].split("@")[0]]
    for child in plan.get("children", []):
        found.extend(_operators(child))
    return found


@pytest.mark.parametrize("name", list(BATCH_WRITES))
async def test_no_batch_write_reads_a_whole_label_on_neo4j(store: GraphStore, name: str) -> None:
    if store.dialect.name != "neo4j":
        pytest.skip("plans are read from Neo4j's EXPLAIN")
    # given a graph with customers and nothing else yet, as the first batch of orders finds it
    await store.write("UNWIND range(1, 1000) AS n CREATE (:Customer {id: toString(n)})")
    # when the statement is planned
    async with store._driver.session() as session:  # type: ignore[attr-defined]
        # (planned afresh: a plan cached while the graph was empty has no scan to find)
        result = await session.run("CYPHER replan=force EXPLAIN " + BATCH_WRITES[name], PARAMETERS)
        summary = await result.consume()
    # then no step reads every node of a label or every relationship of a type
    operators = _operators(summary.plan)
    assert not [op for op in operators if op.startswith(SCANS)], operators


# -- MERGE under concurrency: a unique key for every node, a lock for every relationship --------

GRAPH_SOURCES = sorted((Path(__file__).resolve().parents[2] / "graph").glob("*.py"))
NODE_MERGE = re.compile(r"MERGE \(\w+:(\w+) \{\{?(\w+):")
"""`MERGE (x:Label {key: ...` in a statement or a statement template (`{{` in an f-string)."""


def test_every_node_merge_is_on_a_unique_key() -> None:
    # A MERGE on a key without a unique constraint can make two nodes when two writers run it at
    # once (Neo4j locks a key for MERGE only when a constraint backs it; on FalkorDB the
    # constraint refuses the second node). Every (label, key) a statement merges on is one of
    # the schema's unique keys, or the Neo4j write lock's (created with its own constraint).
    unique = {*CRM_SCHEMA.unique, (WRITE_LOCK, "name")}
    merged = {
        (source.name, label, key)
        for source in GRAPH_SOURCES
        for label, key in NODE_MERGE.findall(source.read_text())
    }
    assert merged, "no MERGE found: the pattern no longer matches the statements"
    # the one exception: moving an earlier release's audit entries (`audit.MOVED`, run when the
    # store is opened) merges on what an entry says, so a batch moved again makes no second one
    moving = ("audit.py", "AuditEntry", "requestId")
    assert [m for m in merged if (m[1], m[2]) not in unique and m != moving] == []


async def test_every_unique_key_is_enforced(store: GraphStore) -> None:
    # FalkorDB builds a unique constraint in the background over an index of its own, and
    # reports it FAILED if stored nodes break it: bootstrap must leave every one OPERATIONAL
    if store.dialect.name == "neo4j":
        rows = await store.read(
            "SHOW CONSTRAINTS YIELD type, labelsOrTypes, properties "
            "WHERE type = 'UNIQUENESS' RETURN labelsOrTypes[0] AS label, properties[0] AS key"
        )
        enforced = {(r["label"], r["key"]) for r in rows}
    else:
        rows = await store.read(
            "CALL db.constraints() YIELD type, label, properties, status "
            "RETURN type, label, properties[0] AS key, status"
        )
        assert {r["status"] for r in rows} == {"OPERATIONAL"}, rows
        enforced = {(r["label"], r["key"]) for r in rows if r["type"] == "UNIQUE"}
        # the audit trail's keys in its own graph (graph.schema.AUDIT_SCHEMA)
        rows = await store.audit_graph().read(
            "CALL db.constraints() YIELD type, label, properties, status "
            "RETURN type, label, properties[0] AS key, status"
        )
        assert {r["status"] for r in rows} == {"OPERATIONAL"}, rows
        audit_enforced = {(r["label"], r["key"]) for r in rows if r["type"] == "UNIQUE"}
        assert set(AUDIT_SCHEMA.unique) <= audit_enforced
        enforced |= audit_enforced - set(MAIN_SCHEMA.unique)
    assert set(CRM_SCHEMA.unique) <= enforced


RELATIONSHIP_MERGES = {
    "UPSERT_CUSTOMERS_IF_UNCHANGED": loader_writes.UPSERT_CUSTOMERS_IF_UNCHANGED,
    "UPSERT_PRODUCTS": loader_writes.UPSERT_PRODUCTS,
    "UPSERT_TRANSACTIONS": loader_writes.UPSERT_TRANSACTIONS,
    "UPSERT_INTERACTIONS": loader_writes.UPSERT_INTERACTIONS,
    **{f"upsert_ties({t})": loader_writes.upsert_ties(t) for t in TIE_TYPES},
    "ASSIGN_SEGMENTS": analytics_queries.ASSIGN_SEGMENTS,
    **{f"MERGE_STATEMENTS[{i}]": s for i, s in enumerate(writes.MERGE_STATEMENTS) if "-[" in s},
}


def _merges(plan: Any) -> list[tuple[str, str]]:
    found = []
    operator = plan["operatorType"].split("@")[0]
    if operator.endswith("Merge"):
        found.append((operator, str(plan.get("args", {}).get("Details", ""))))
    for child in plan.get("children", []):
        found.extend(_merges(child))
    return found


@pytest.mark.parametrize("name", list(RELATIONSHIP_MERGES))
async def test_every_relationship_merge_locks_both_ends_on_neo4j(
    store: GraphStore, name: str
) -> None:
    # Neo4j's reads take no locks: two transactions could both find no line from an order to a
    # product and both create one, unless the MERGE locks both nodes and looks again
    # (LockingMerge). FalkorDB runs one write at a time.
    if store.dialect.name != "neo4j":
        pytest.skip("plans are read from Neo4j's EXPLAIN")
    statement = store.dialect.spelled(RELATIONSHIP_MERGES[name])
    params = {**PARAMETERS, "keep": "1", "others": ["2"], "fill": {}, "event": "{}",
              "footprint": [], "sourceIds": [], "emails": [], "phones": []}  # fmt: skip
    async with store._driver.session() as session:  # type: ignore[attr-defined]
        result = await session.run("EXPLAIN " + statement, params)
        summary = await result.consume()
    merges = _merges(summary.plan)
    relationships = [(op, details) for op, details in merges if "]-" in details]
    assert relationships, merges
    assert [r for r in relationships if r[0] != "LockingMerge"] == []


def _falkordb_operations(operation: Any) -> list[str]:
    found = [str(operation.name)]
    for child in operation.children:
        found.extend(_falkordb_operations(child))
    return found


async def test_the_order_lines_are_not_a_cartesian_product_on_falkordb(store: GraphStore) -> None:
    """The orders statement collects the batch's events before it writes the lines; FalkorDB
    copies a record's every value into each record of a cartesian product, so matching a line's
    order and product in one `MATCH` copied the batch's whole list of events once a line: 6.5 s
    a batch of 3,768 lines of Online Retail, 0.35 s with the order and the product matched one
    after the other (bench/README.md, round 4)."""
    if store.dialect.name == "neo4j":
        pytest.skip("FalkorDB's plan")
    plan = await store._graph.explain(  # type: ignore[attr-defined]
        loader_writes.UPSERT_TRANSACTIONS, PARAMETERS
    )
    operations = _falkordb_operations(plan.structured_plan)
    assert "Unwind" in operations and "Cartesian Product" not in operations, operations
