"""Root fields for the catalogue: products, who bought them, categories."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from crm_graph.api.customers.pages import BUYER_ORDERING, keyset
from crm_graph.api.customers.types import Customer, Product
from crm_graph.api.execution import RequestLoader
from crm_graph.api.pagination import (
    Connection,
    PageInfo,
    connection,
    encode_cursor,
    page_info,
    page_request,
)
from crm_graph.graph import catalog


@strawberry.type(description="What one customer bought of a product.")
class Buyer:
    customer: Customer
    quantity: float
    orders: int
    spend: float


@strawberry.type(description="A product and the customers who bought it.")
class CatalogProduct(Product):
    @strawberry.field(description="Buyers, most units first (a page).")
    async def buyers(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Buyer]:
        request = page_request("buyers", BUYER_ORDERING, first, after, last, before)
        page = keyset(request)
        loaders = info.context.extra
        key = ("buyers", page)
        if key not in loaders:

            async def load(ids: list[str]) -> list[dict[str, Any]]:
                scope = info.context.customer_scope
                rows = await info.context.store.read(
                    catalog.buyers_by_product(scope),
                    {"ids": ids, **page.params("by"), **scope.params},
                )
                found = {r["id"]: r for r in rows}
                return [found.get(i, {"buyers": [], "total": 0}) for i in ids]

            loaders[key] = RequestLoader(load_fn=load)
        row = await loaders[key].load(str(self.id))
        return connection(
            row["buyers"],
            request,
            BUYER_ORDERING,
            lambda r: (r["quantity"], str(r["customer"]["id"])),
            lambda r: Buyer(
                customer=Customer.from_props(r["customer"]),
                quantity=r["quantity"],
                orders=r["orders"],
                spend=r["spend"],
            ),
            row["total"],
        )


PRODUCT_ORDERING = "PRODUCT_ID"
"""What product cursors are made for: products come by id."""


@strawberry.type
class ProductEdge:
    cursor: str
    node: CatalogProduct


@strawberry.type(description="A page of products (Relay connection).")
class ProductConnection:
    edges: list[ProductEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[CatalogProduct]:
        return [edge.node for edge in self.edges]


@strawberry.type
class Category:
    name: str
    product_count: int


def _product(props: dict[str, object]) -> CatalogProduct:
    base = Product.from_props(props)
    return CatalogProduct(id=base.id, name=base.name, category=base.category, price=base.price)


@strawberry.type
class CatalogQueries:
    @strawberry.field(
        description="Products by id, optionally of one category, a page at a time (forwards "
        "with first/after, backwards with last/before)."
    )
    async def products(
        self, info: Info, category: str | None = None,
        first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
    ) -> ProductConnection:  # fmt: skip
        request = page_request("products", PRODUCT_ORDERING, first, after, last, before)
        cursor = request.cursor[1] if request.cursor else None
        found, more = await catalog.product_page(
            info.context.store, category, cursor, request.size, backwards=request.backwards
        )
        edges = [
            ProductEdge(cursor=encode_cursor(PRODUCT_ORDERING, None, str(p["id"])),
                        node=_product(p))
            for p in found
        ]  # fmt: skip
        return ProductConnection(
            edges=edges, page_info=page_info([e.cursor for e in edges], request, more)
        )

    @strawberry.field
    async def product(self, info: Info, id: strawberry.ID) -> CatalogProduct | None:
        rows = await info.context.store.read(catalog.PRODUCTS_BY_ID, {"ids": [str(id)]})
        return _product(rows[0]["product"]) if rows else None

    @strawberry.field
    async def categories(self, info: Info) -> list[Category]:
        rows = await info.context.store.read(catalog.CATEGORIES)
        return [Category(name=r["name"], product_count=r["products"]) for r in rows]
