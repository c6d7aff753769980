"""Root fields for finding customers: by id, a filtered page, a text search."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from crm_graph.api.customers.filters import CustomerFilter, CustomerOrder, SortDirection, to_spec
from crm_graph.api.customers.planner import customer_view
from crm_graph.api.customers.types import Customer
from crm_graph.api.errors import user_error
from crm_graph.api.pagination import PageInfo, encode_cursor, page_info, page_request
from crm_graph.api.permissions import CanAggregate, CanFilterOnPersonalData
from crm_graph.graph import customer_reads
from crm_graph.graph.filters import FilterError


@strawberry.type
class CustomerEdge:
    cursor: str
    node: Customer


@strawberry.type(description="A page of customers (Relay connection).")
class CustomerConnection:
    edges: list[CustomerEdge]
    page_info: PageInfo
    spec: strawberry.Private[dict[str, Any] | None]

    @strawberry.field
    def nodes(self) -> list[Customer]:
        return [edge.node for edge in self.edges]

    @strawberry.field(
        description="All customers matching the filter (computed only if asked; not for "
        "partner keys).",
        permission_classes=[CanAggregate],
    )
    async def total_count(self, info: Info) -> int | None:
        return await customer_reads.count_customers(
            info.context.store, self.spec, info.context.customer_scope
        )


SEARCH_ORDERING = "SEARCH"
"""What search cursors are made for: matches come by name, then id."""


@strawberry.type(description="A page of the customers a search found (Relay connection).")
class CustomerSearchConnection:
    edges: list[CustomerEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[Customer]:
        return [edge.node for edge in self.edges]


@strawberry.type
class CustomerQueries:
    @strawberry.field(description="One customer's 360 view, or null if there is no such id.")
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        # the parts of the view asked for come with the profile: one round trip in all
        view = customer_view(info)
        rows = await info.context.loaders.customer_view(view).load(str(id))
        return Customer.from_view_row(rows[0], view) if rows else None

    @strawberry.field(description="Customers matching a filter, sorted, a page at a time: "
                      "forwards with first/after, backwards with last/before (at most 100; "
                      "20 when neither first nor last is given).",
                      permission_classes=[CanFilterOnPersonalData])  # fmt: skip
    async def customers(
        self, info: Info, where: CustomerFilter | None = None,
        order_by: CustomerOrder | None = None, first: int | None = None,
        after: str | None = None, last: int | None = None, before: str | None = None,
    ) -> CustomerConnection:  # fmt: skip
        order = order_by or CustomerOrder()
        request = page_request("customers", order.field.value, first, after, last, before)
        spec = to_spec(where) if where else None
        try:
            page = await customer_reads.customer_page(
                info.context.store, spec, order=order.field.value,
                descending=order.direction is SortDirection.DESC, after=request.cursor,
                first=request.size, backwards=request.backwards,
                scope=info.context.customer_scope,
            )  # fmt: skip
        except FilterError as e:
            raise user_error(str(e), field="customers.where") from e
        edges = [
            CustomerEdge(
                cursor=encode_cursor(order.field.value, key, props["id"]),
                node=Customer.from_props(props),
            )
            for props, key in zip(page.customers, page.sort_keys, strict=True)
        ]
        info_ = page_info([edge.cursor for edge in edges], request, page.has_next)
        return CustomerConnection(edges=edges, page_info=info_, spec=spec)

    @strawberry.field(description="Customers whose name, email or phone contains the text "
                      "(case-insensitive), by name; for partner keys, whose name does. Paged "
                      "forwards with first/after, backwards with last/before.")  # fmt: skip
    async def search_customers(
        self, info: Info, text: str, first: int | None = None, after: str | None = None,
        last: int | None = None, before: str | None = None,
    ) -> CustomerSearchConnection:  # fmt: skip
        request = page_request("searchCustomers", SEARCH_ORDERING, first, after, last, before)
        if len(text.strip()) < 2:
            raise user_error("text needs at least 2 characters", field="searchCustomers.text")
        principal = info.context.principal
        personal = principal is not None and principal.sees_personal_data  # partners: names only
        page = await customer_reads.search_customers(
            info.context.store, text, request.size, personal=personal,
            after=request.cursor, backwards=request.backwards, scope=info.context.customer_scope,
        )  # fmt: skip
        edges = [
            CustomerEdge(
                cursor=encode_cursor(SEARCH_ORDERING, key, props["id"]),
                node=Customer.from_props(props),
            )
            for props, key in zip(page.customers, page.sort_keys, strict=True)
        ]
        info_ = page_info([edge.cursor for edge in edges], request, page.has_next)
        return CustomerSearchConnection(edges=edges, page_info=info_)
