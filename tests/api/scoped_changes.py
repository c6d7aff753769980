"""Erasures and merges of customers in and out of a source system's and a segment's scope: the
one scenario the subscription and the webhook tests run through the real app, and what each
scope must receive of it (`EXPECTED`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from crm_graph.graph.access import CustomerScope
from crm_graph.graph.store import GraphStore
from tests.api.test_mutations import ERASE, UPSERT

MERGE_FOR_REAL = """
mutation($ids: [ID!]!) {
  mergeCustomers(ids: $ids, dryRun: false) {
    __typename
    ... on MergeCustomersError { code field }
  }
}
"""

SHOP = CustomerScope(systems=("shop",))
"""Customers with a source record of the shop: a1..a4, z1."""
VIP = CustomerScope(segments=("VIP",))
"""Customers in the segment named VIP (id seg-vip): b1, b2, b4, z1."""

EXPECTED: dict[CustomerScope, list[tuple[str, list[str]]]] = {
    SHOP: [
        ("customer.erased", ["a1"]),
        ("customer.merged", ["a2", "a3"]),
        ("customer.updated", ["z1"]),
    ],
    VIP: [
        ("customer.erased", ["b1"]),
        ("customer.merged", ["b2", "b4"]),
        ("customer.updated", ["z1"]),
    ],
}
"""What a subscription of each scope receives of `changes` (types erased, merged, updated):
the erasure and the merge of its customers, never those of others, nor a merge naming one
customer outside it (a4 kept, b5 merged away), then the marker update of z1."""

TYPES = ("customer.erased", "customer.merged", "customer.updated")

Mutate = Callable[..., Awaitable[Any]]


async def customers(store: GraphStore, mutate: Mutate) -> None:
    """The customers, their systems and the segment, before anyone subscribes."""
    shop = [
        {"id": i, "name": f"Name {i}", "sourceSystem": "shop"}
        for i in ("a1", "a2", "a3", "a4", "z1")
    ]
    crm = [
        {"id": i, "name": f"Name {i}", "sourceSystem": "crm"}
        for i in ("b1", "b2", "b3", "b4", "b5")
    ]
    await mutate(UPSERT, input=shop)
    await mutate(UPSERT, input=crm)
    await store.write(
        "CREATE (g:Segment {id: 'seg-vip', name: 'VIP'}) WITH g "
        "UNWIND $ids AS id MATCH (c:Customer {id: id}) CREATE (c)-[:IN_SEGMENT]->(g)",
        {"ids": ["b1", "b2", "b4", "z1"]},
    )


async def changes(mutate: Mutate) -> None:
    """Erasures and merges inside and outside each scope, then an update both see (last)."""
    await mutate(ERASE, id="a1")  # shop, not VIP
    await mutate(ERASE, id="b1")  # VIP, not shop
    await mutate(ERASE, id="b3")  # neither
    await mutate(MERGE_FOR_REAL, ids=["a2", "a3"])  # both shop
    await mutate(MERGE_FOR_REAL, ids=["b2", "b4"])  # both VIP
    await mutate(MERGE_FOR_REAL, ids=["a4", "b5"])  # a4 shop, b5 neither: for no one
    await mutate(UPSERT, input=[{"id": "z1", "city": "York"}])
