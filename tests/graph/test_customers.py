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


async def test_ties_with_the_profile_keep_their_type_when_a_new_type_appears(
    store: GraphStore,
) -> None:
    """The same, for the ties that come with the profile (`customer_view_query`): read once,
    then a tie of a new type added, then both read with their own types."""
    query, params = customers.customer_view_query(customers.CustomerView(ties=True))
    await store.write("CREATE (:Customer {id: 'a'}), (:Customer {id: 'b'}), (:Customer {id: 'c'})")
    await store.write(
        "MATCH (a:Customer {id: 'a'}), (b:Customer {id: 'b'}) CREATE (a)-[:KNOWS]->(b)"
    )
    read = await customers.by_customer(store, query, ["a"], **params)
    assert [(t["type"], t["customer"]["id"]) for t in read["a"][0]["ties"]] == [("KNOWS", "b")]
    await store.write(
        "MATCH (a:Customer {id: 'a'}), (c:Customer {id: 'c'}) CREATE (c)-[:FAMILY]->(a)"
    )
    read = await customers.by_customer(store, query, ["a"], **params)
    ties = read["a"][0]["ties"]
    assert sorted((t["type"], t["outgoing"], t["customer"]["id"]) for t in ties) == [
        ("FAMILY", False, "c"), ("KNOWS", True, "b")
    ]  # fmt: skip


async def test_the_view_with_the_profile_equals_its_parts_own_statements(
    store: GraphStore,
) -> None:
    """Given customers with orders (with and without lines), interactions and ties (and one
    with none of them), when their profiles are read with every part of the view, then each
    part equals what its own batched statement reads, customer by customer."""
    await store.write(
        """
        CREATE (a:Customer {id: 'a', name: 'A'}), (b:Customer {id: 'b', name: 'B'}),
               (:Customer {id: 'z', name: 'Z'}),
               (p:Product {id: 'p1', name: 'P1'}), (q:Product {id: 'p2', name: 'P2'}),
               (a)-[:PLACED]->(t1:Transaction {id: 't1', at: 1000, total: 5.0}),
               (a)-[:PLACED]->(t2:Transaction {id: 't2', at: 3000, total: 7.0}),
               (a)-[:PLACED]->(t3:Transaction {id: 't3', at: 2000, total: 1.0}),
               (b)-[:PLACED]->(:Transaction {id: 't4', at: 2500, total: 2.0}),
               (t1)-[:CONTAINS {quantity: 1.0, unitPrice: 5.0, amount: 5.0}]->(p),
               (t2)-[:CONTAINS {quantity: 2.0, unitPrice: 2.0, amount: 4.0}]->(q),
               (t2)-[:CONTAINS {quantity: 1.0, unitPrice: 3.0, amount: 3.0}]->(p),
               (a)-[:HAD]->(:Interaction {id: 'i1', type: 'call', at: 100}),
               (a)-[:HAD]->(:Interaction {id: 'i2', type: 'email', at: 300}),
               (a)-[:HAD]->(:Interaction {id: 'i3', type: 'call', at: 200}),
               (a)-[:KNOWS {since: 10, weight: 0.5}]->(b), (b)-[:FAMILY]->(a)
        """
    )
    ids = ["a", "b", "z", "nobody"]
    tx = customers.TransactionPage(first=2, since=1500, lines=True)
    ix = customers.InteractionPage(first=2, types=("call",))
    view = customers.CustomerView(figures=True, transactions=tx, interactions=ix, ties=True)
    query, params = customers.customer_view_query(view)
    read = await customers.by_customer(store, query, ids, **params)
    stats = await customers.by_customer(store, customers.STATS_BY_CUSTOMER, ids)
    pages = await customers.by_customer(
        store,
        customers.TRANSACTIONS_WITH_LINES_BY_CUSTOMER,
        ids,
        first=2,
        **{"from": 1500, "to": None},
    )
    contacts = await customers.by_customer(
        store, customers.INTERACTIONS_BY_CUSTOMER, ids,
        first=2, types=["call"], **{"from": None, "to": None},
    )  # fmt: skip
    ties = await customers.by_customer(store, customers.TIES_BY_CUSTOMER, ids)
    assert read["nobody"] == []
    for customer_id in ["a", "b", "z"]:
        (row,) = read[customer_id]
        assert row["customer"]["id"] == customer_id
        (figures,) = stats[customer_id]
        assert {k: row[k] for k in ("orders", "spend", "first", "last")} == {
            k: figures[k] for k in ("orders", "spend", "first", "last")
        }
        assert [(t["transaction"], sorted(t["lines"], key=str)) for t in row["transactions"]] == [
            (t["transaction"], sorted(t["lines"], key=str)) for t in pages[customer_id]
        ]
        assert row["interactions"] == [i for r in contacts[customer_id] for i in r["interactions"]]
        assert sorted(row["ties"], key=str) == sorted(
            ({k: v for k, v in t.items() if k != "id"} for t in ties[customer_id]), key=str
        )
    assert [t["transaction"]["id"] for t in read["a"][0]["transactions"]] == ["t2", "t3"]
    assert [i["id"] for i in read["a"][0]["interactions"]] == ["i3", "i1"]
