"""The 360 view's batched statements (graph/customer_reads.py) on the real engines."""

from __future__ import annotations

import json
from typing import Any

import pytest

from crm_graph.graph import customer_reads
from crm_graph.graph.pages import KeysetPage
from crm_graph.graph.store import GraphStore

ALL_TIES = customer_reads.TiePage(KeysetPage(100))
"""A page of ties large enough for every tie these tests create."""


def canonical(item: dict[str, Any]) -> str:
    """A sort key for a dict by its content whatever the order of its keys (`str` of a dict
    depends on the order the engine returned them in: FalkorDB's and Neo4j's differ)."""
    return json.dumps(item, sort_keys=True, default=str)


async def test_ties_keep_their_type_when_a_new_type_appears(store: GraphStore) -> None:
    """Given a customer's ties read once (the statement's plan cached), when a tie of a type the
    graph had not held before is added, then both ties are read with their own types. (FalkorDB
    4.16's pattern comprehension `[(c)-[r:KNOWS|FAMILY...]-(o) | type(r)]` named the new tie
    KNOWS, under a concurrent load null: ties are read with MATCH.)"""
    await store.write("CREATE (:Customer {id: 'a'}), (:Customer {id: 'b'}), (:Customer {id: 'c'})")
    await store.write(
        "MATCH (a:Customer {id: 'a'}), (b:Customer {id: 'b'}) CREATE (a)-[:KNOWS]->(b)"
    )
    read = await customer_reads.by_customer(
        store, customer_reads.TIES_BY_CUSTOMER, ["a"], **ALL_TIES.params()
    )
    assert [(t["type"], t["customer"]["id"]) for t in read["a"][0]["ties"]] == [("KNOWS", "b")]
    await store.write(
        "MATCH (a:Customer {id: 'a'}), (c:Customer {id: 'c'}) CREATE (c)-[:FAMILY]->(a)"
    )
    read = await customer_reads.by_customer(
        store, customer_reads.TIES_BY_CUSTOMER, ["a"], **ALL_TIES.params()
    )
    assert [(t["type"], t["outgoing"], t["customer"]["id"]) for t in read["a"][0]["ties"]] == [
        ("FAMILY", False, "c"), ("KNOWS", True, "b")
    ]  # fmt: skip


async def test_ties_with_the_profile_keep_their_type_when_a_new_type_appears(
    store: GraphStore,
) -> None:
    """The same, for the ties that come with the profile (`customer_view_query`): read once,
    then a tie of a new type added, then both read with their own types."""
    query, params = customer_reads.customer_view_query(customer_reads.CustomerView(ties=ALL_TIES))
    await store.write("CREATE (:Customer {id: 'a'}), (:Customer {id: 'b'}), (:Customer {id: 'c'})")
    await store.write(
        "MATCH (a:Customer {id: 'a'}), (b:Customer {id: 'b'}) CREATE (a)-[:KNOWS]->(b)"
    )
    read = await customer_reads.by_customer(store, query, ["a"], **params)
    assert [(t["type"], t["customer"]["id"]) for t in read["a"][0]["ties"]] == [("KNOWS", "b")]
    await store.write(
        "MATCH (a:Customer {id: 'a'}), (c:Customer {id: 'c'}) CREATE (c)-[:FAMILY]->(a)"
    )
    read = await customer_reads.by_customer(store, query, ["a"], **params)
    ties = read["a"][0]["ties"]
    assert sorted((t["type"], t["outgoing"], t["customer"]["id"]) for t in ties) == [
        ("FAMILY", False, "c"), ("KNOWS", True, "b")
    ]  # fmt: skip


VIEW_GRAPH = """
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


@pytest.mark.parametrize(
    ("since", "a_page"), [(2500, ["t2"]), (None, ["t2", "t3"])], ids=["date range", "all orders"]
)
async def test_the_view_with_the_profile_equals_its_parts_own_statements(
    store: GraphStore, since: int | None, a_page: list[str]
) -> None:
    """Given customers with orders (with and without lines), interactions and ties (and one
    with none of them), when their profiles are read with every part of the view, then each
    part equals what its own batched statement reads, customer by customer; the figures are
    over all orders whether the page of orders has a date range or not (without one, figures
    and page come from one pass over the orders)."""
    await store.write(VIEW_GRAPH)
    ids = ["a", "b", "z", "nobody"]
    tx = customer_reads.TransactionPage(KeysetPage(2), since=since, lines=True)
    ix = customer_reads.InteractionPage(KeysetPage(2), types=("call",))
    view = customer_reads.CustomerView(
        figures=True, transactions=tx, interactions=ix, ties=ALL_TIES
    )
    query, params = customer_reads.customer_view_query(view)
    read = await customer_reads.by_customer(store, query, ids, **params)
    stats = await customer_reads.by_customer(store, customer_reads.STATS_BY_CUSTOMER, ids)
    pages = await customer_reads.by_customer(
        store, customer_reads.TRANSACTIONS_WITH_LINES_BY_CUSTOMER, ids, **tx.params()
    )
    contacts = await customer_reads.by_customer(
        store, customer_reads.INTERACTIONS_BY_CUSTOMER, ids, **ix.params()
    )
    ties = await customer_reads.by_customer(
        store, customer_reads.TIES_BY_CUSTOMER, ids, **ALL_TIES.params()
    )
    assert read["nobody"] == []
    for customer_id in ["a", "b", "z"]:
        (row,) = read[customer_id]
        assert row["customer"]["id"] == customer_id
        (figures,) = stats[customer_id]
        assert {k: row[k] for k in ("orders", "spend", "first", "last")} == {
            k: figures[k] for k in ("orders", "spend", "first", "last")
        }
        assert [
            (t["transaction"], sorted(t["lines"], key=canonical)) for t in row["transactions"]
        ] == [
            (t["transaction"], sorted(t["lines"], key=canonical))
            for r in pages[customer_id]
            for t in r["transactions"]
        ]
        assert row["txTotal"] == sum(r["total"] for r in pages[customer_id])
        assert row["interactions"] == [i for r in contacts[customer_id] for i in r["interactions"]]
        assert row["ixTotal"] == sum(r["total"] for r in contacts[customer_id])
        assert row["ties"] == [t for r in ties[customer_id] for t in r["ties"]]
        assert row["tieTotal"] == sum(r["total"] for r in ties[customer_id])
    page, _ = tx.page.cut(read["a"][0]["transactions"])
    assert [t["transaction"]["id"] for t in page] == a_page
    contacts_page, more = ix.page.cut(read["a"][0]["interactions"])
    assert [i["id"] for i in contacts_page] == ["i3", "i1"] and not more


async def test_the_view_reads_only_the_properties_it_names(store: GraphStore) -> None:
    """Given the same customers, when the view names the properties to read of the orders, the
    lines' products, the interactions and the ties' customers, then each part holds those keys
    only (null where the node has no such property), with the values its own statement reads;
    and a customer with none of them gets empty parts (FalkorDB 4.16 projects a missing node
    to a map of nulls: the view keeps it null)."""
    await store.write(VIEW_GRAPH)
    ids = ["a", "b", "z", "nobody"]
    pick = {"transaction": ("channel", "id", "total"), "product": ("name",),
            "interaction": ("id", "type"), "customer": ("name",)}  # fmt: skip

    def picked(props: dict[str, Any], part: str) -> dict[str, Any]:
        return {key: props.get(key) for key in pick[part]}

    def picked_lines(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(({**line, "product": picked(line["product"], "product")} for line in items),
                      key=canonical)  # fmt: skip

    ix = customer_reads.InteractionPage(KeysetPage(2))
    contacts = await customer_reads.by_customer(
        store, customer_reads.INTERACTIONS_BY_CUSTOMER, ids, **ix.params()
    )
    ties = await customer_reads.by_customer(
        store, customer_reads.TIES_BY_CUSTOMER, ids, **ALL_TIES.params()
    )
    for lines in (False, True):
        tx = customer_reads.TransactionPage(KeysetPage(2), lines=lines)
        view = customer_reads.CustomerView(
            figures=True, transactions=tx, interactions=ix, ties=ALL_TIES,
            transaction_properties=pick["transaction"], product_properties=pick["product"],
            interaction_properties=pick["interaction"], tie_customer_properties=pick["customer"],
        )  # fmt: skip
        query, params = customer_reads.customer_view_query(view)
        read = await customer_reads.by_customer(store, query, ids, **params)
        statement = (
            customer_reads.TRANSACTIONS_WITH_LINES_BY_CUSTOMER
            if lines
            else customer_reads.TRANSACTIONS_BY_CUSTOMER
        )
        pages = await customer_reads.by_customer(store, statement, ids, **tx.params())
        stats = await customer_reads.by_customer(store, customer_reads.STATS_BY_CUSTOMER, ids)
        assert read["nobody"] == []
        for customer_id in ["a", "b", "z"]:
            (row,) = read[customer_id]
            (figures,) = stats[customer_id]
            assert {k: row[k] for k in ("orders", "spend", "first", "last")} == {
                k: figures[k] for k in ("orders", "spend", "first", "last")
            }
            if lines:
                assert [(t["transaction"], sorted(t["lines"], key=canonical))
                        for t in row["transactions"]] == [
                    (picked(t["transaction"], "transaction"), picked_lines(t["lines"]))
                    for r in pages[customer_id] for t in r["transactions"]
                ]  # fmt: skip
            else:
                assert row["transactions"] == [
                    picked(t, "transaction") for r in pages[customer_id] for t in r["transactions"]
                ]
            assert row["interactions"] == [
                picked(i, "interaction") for r in contacts[customer_id] for i in r["interactions"]
            ]
            assert row["ties"] == [
                {**t, "customer": picked(t["customer"], "customer")}
                for r in ties[customer_id] for t in r["ties"]
            ]  # fmt: skip
        assert read["z"][0]["transactions"] == read["z"][0]["interactions"] == []
        assert read["z"][0]["ties"] == []
        assert [t["id"] if not lines else t["transaction"]["id"]
                for t in tx.page.cut(read["a"][0]["transactions"])[0]] == ["t2", "t3"]  # fmt: skip
