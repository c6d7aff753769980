"""The loader's per-batch writes touch only the rows of the batch: no step of their plans reads
every node of a label. On Neo4j, `OPTIONAL MATCH (prev:Customer)-[:PLACED]->(t)` was planned as a
scan of every customer for each order (1,000 customers: 654,000 rows for a batch of 654 orders;
20k customers: 107.6 s to load), so the previous owner is now found from the order."""

from __future__ import annotations

from typing import Any

import pytest

from crm_graph.graph import loader_writes
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
