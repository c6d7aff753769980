"""Root fields for the catalogue: products, who bought them, categories."""

from __future__ import annotations

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from crm_graph.api.customers.types import Customer, Product, check_first
from crm_graph.api.pagination import PageInfo, encode_cursor, page_info, page_request
from crm_graph.graph import catalog


@strawberry.type(description="What one customer bought of a product.")
class Buyer:
    customer: Customer
    quantity: float
    orders: int
    spend: float


@strawberry.type(description="A product and the customers who bought it.")
class CatalogProduct(Product):
    @strawberry.field(description="Buyers, most units first.")
    async def buyers(self, info: Info, first: int = 20) -> list[Buyer]:
        check_first(first, "buyers.first")
        loaders = info.context.extra
        key = ("buyers", first)
        if key not in loaders:

            async def load(ids: list[str]) -> list[list[dict[str, object]]]:
                scope = info.context.customer_scope
                rows = await info.context.store.read(
                    catalog.buyers_by_product(scope), {"ids": ids, "first": first, **scope.params}
                )
                found = {r["id"]: r["buyers"] for r in rows}
                return [found.get(i, []) for i in ids]

            loaders[key] = DataLoader(load_fn=load)
        rows = await loaders[key].load(str(self.id))
        return [
            Buyer(
                customer=Customer.from_props(r["customer"]),
                quantity=r["quantity"],
                orders=r["orders"],
                spend=r["spend"],
            )
            for r in rows
        ]


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
