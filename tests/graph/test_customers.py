"""The 360 view's batched statements (graph/customers.py) on the real engines."""

from __future__ import annotations

from graph import customers
from graph.store import GraphStore


async def test_ties_keep_their_type_when_a_new_type_appears(store: GraphStore) -> None:
    """Given a customer's ties read once (the statement's plan cached), when a tie of a type the
    graph had not held before is added, then both ties are read with their own types. (FalkorDB
    4.16's pattern comprehension `[(c)-[r:KNOWS|FAMILY...]-(o) | type(r)]` named the new tie
    KNOWS, under a concurrent load null: ties are read with MATCH.)"""
    await store.write("CREATE (:Customer {id: 'a'}), (:Customer {id: 'b'}), (:Customer {id: 'c'})")
    await store.write(
        "MATCH (a:Customer {id: 'a'}), (b:Customer {id: 'b'}) CREATE (a)-[:KNOWS]->(b)"
    )
    read = await customers.by_customer(store, customers.TIES_BY_CUSTOMER, ["a"])
    assert [(t["type"], t["customer"]["id"]) for t in read["a"]] == [("KNOWS", "b")]
    await store.write(
        "MATCH (a:Customer {id: 'a'}), (c:Customer {id: 'c'}) CREATE (c)-[:FAMILY]->(a)"
    )
    read = await customers.by_customer(store, customers.TIES_BY_CUSTOMER, ["a"])
    assert [(t["type"], t["outgoing"], t["customer"]["id"]) for t in read["a"]] == [
        ("FAMILY", False, "c"), ("KNOWS", True, "b")
    ]  # fmt: skip
