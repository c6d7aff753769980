"""Products and categories for the API, and who bought what."""

from __future__ import annotations

from typing import Any

from crm_graph.graph.access import EVERYONE, CustomerScope
from crm_graph.graph.money import exact_sums
from crm_graph.graph.pages import keyset_slice
from crm_graph.graph.store import GraphStore

PRODUCTS_PAGE = """
MATCH (p:Product)
WHERE ($category IS NULL OR p.category = $category) AND ($after IS NULL OR p.id > $after)
WITH p ORDER BY p.id LIMIT $limit
RETURN properties(p) AS product
"""

PRODUCTS_PAGE_BACKWARDS = """
MATCH (p:Product)
WHERE ($category IS NULL OR p.category = $category) AND ($after IS NULL OR p.id < $after)
WITH p ORDER BY p.id DESC LIMIT $limit
RETURN properties(p) AS product
"""

PRODUCTS_BY_ID = "UNWIND $ids AS id MATCH (p:Product {id: id}) RETURN id, properties(p) AS product"

BUYERS_BY_PRODUCT = exact_sums("""
UNWIND $ids AS id
MATCH (c:Customer)-[:PLACED]->(t:Transaction)-[e:CONTAINS]->(p:Product {id: id})
WITH id, c, sum(e.quantity) AS quantity, count(DISTINCT t) AS orders, sum(e.amount) AS spend
WITH id, c, quantity, orders, spend ORDER BY quantity DESC, c.id
WITH id, collect({customer: properties(c), quantity: quantity, orders: orders, spend: spend})
     AS byFound
RETURN id, BUYERS_PAGE AS buyers, size(byFound) AS total
""").replace(
    "BUYERS_PAGE",
    keyset_slice(
        "byFound", "x.quantity", "x.customer.id", "by", descending=True, ident_descending=False
    ),
)
"""A page of each product's buyers (`KeysetPage.params("by")`), most units first, then by
customer id; `total` counts them all."""


def buyers_by_product(scope: CustomerScope = EVERYONE) -> str:
    """`BUYERS_BY_PRODUCT` among the customers in `scope` (its `params` go with the query's)."""
    if scope.everyone:
        return BUYERS_BY_PRODUCT
    return BUYERS_BY_PRODUCT.replace(
        "(p:Product {id: id})\n", f"(p:Product {{id: id}})\n{scope.keep('c', 'id, c, t, e')}"
    )


CATEGORIES = """
MATCH (k:Category)
OPTIONAL MATCH (p:Product)-[:IN_CATEGORY]->(k)
WITH k.name AS name, count(p) AS products
RETURN name, products ORDER BY name
"""


async def product_page(
    store: GraphStore,
    category: str | None,
    after: str | None,
    first: int,
    *,
    backwards: bool = False,
) -> tuple[list[dict[str, Any]], bool]:
    """Products by id after the id `after`, and whether more come; `backwards`: the ones
    before it (or the last ones), still in id order, and whether more come before them."""
    query = PRODUCTS_PAGE_BACKWARDS if backwards else PRODUCTS_PAGE
    rows = await store.read(query, {"category": category, "after": after, "limit": first + 1})
    kept = [r["product"] for r in rows[:first]]
    if backwards:
        kept.reverse()
    return kept, len(rows) > first
