"""Root fields for the catalogue: products, who bought them, categories."""

from __future__ import annotations

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from crm_graph.api.customers.types import Customer, Product, check_first
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


@strawberry.type
class ProductPage:
    products: list[CatalogProduct]
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Category:
    name: str
    product_count: int


def _product(props: dict[str, object]) -> CatalogProduct:
    base = Product.from_props(props)
    return CatalogProduct(id=base.id, name=base.name, category=base.category, price=base.price)


@strawberry.type
class CatalogQueries:
    @strawberry.field(description="Products by id, optionally of one category, a page at a time.")
    async def products(
        self, info: Info, category: str | None = None, first: int = 20, after: str | None = None
    ) -> ProductPage:
        check_first(first, "products.first")
        found, more = await catalog.product_page(info.context.store, category, after, first)
        return ProductPage(
            products=[_product(p) for p in found],
            has_next_page=more,
            end_cursor=str(found[-1]["id"]) if found else None,
        )

    @strawberry.field
    async def product(self, info: Info, id: strawberry.ID) -> CatalogProduct | None:
        rows = await info.context.store.read(catalog.PRODUCTS_BY_ID, {"ids": [str(id)]})
        return _product(rows[0]["product"]) if rows else None

    @strawberry.field
    async def categories(self, info: Info) -> list[Category]:
        rows = await info.context.store.read(catalog.CATEGORIES)
        return [Category(name=r["name"], product_count=r["products"]) for r in rows]
