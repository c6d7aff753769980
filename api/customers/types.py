"""GraphQL types of the customer 360 view. What a selection asks of the view, so that its parts
come with the profile, is worked out by `planner`; the pages' arguments by `pages`."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info as StrawberryInfo

from crm_graph.api import audit_trail
from crm_graph.api.customers.pages import (
    INTERACTION_ORDERING,
    LINE_ORDERING,
    PURCHASE_ORDERING,
    TIE_ORDERING,
    TRANSACTION_ORDERING,
    interaction_page,
    keyset,
    tie_page,
    transaction_page,
)
from crm_graph.api.customers.planner import NO_VIEW, items_ask_for
from crm_graph.api.errors import user_error
from crm_graph.api.insights.types import (
    CategoryDemand,
    ChurnRisk,
    Clv,
    Rfm,
    churn_of,
    clv_of,
    demand_of,
    rfm_of,
    stored_number,
)
from crm_graph.api.masking import mask_email, mask_phone
from crm_graph.api.pagination import (
    MAX_PAGE,
    Connection,
    PageRequest,
    connection,
    page_of,
    page_request,
)
from crm_graph.api.scalars import from_epoch_ms
from crm_graph.graph import score_properties
from crm_graph.graph.customer_reads import (
    PROFILE_PROPERTIES,
    CustomerView,
    InteractionPage,
    TiePage,
    TransactionPage,
)
from crm_graph.graph.schema import InteractionType, TieType
from crm_graph.graph.store import Row

T = TypeVar("T")
Info = StrawberryInfo[Any, Any]
"""A resolver's info (the context is `api.context.Context`)."""


def check_first(first: int, field: str) -> None:
    if first < 0 or first > MAX_PAGE:
        raise user_error(f"first must be between 0 and {MAX_PAGE}", field=field, max=MAX_PAGE)


# the graph's vocabularies are the GraphQL enums (registered here, where the schema is made)
strawberry.enum(InteractionType, description="How an interaction with the customer happened.")
strawberry.enum(TieType, description="The kind of social tie between two customers.")


@strawberry.enum
class TieDirection(enum.Enum):
    OUTGOING = "outgoing"
    INCOMING = "incoming"


@strawberry.type(description="A product of the catalogue.")
class Product:
    id: strawberry.ID
    name: str | None
    category: str | None
    price: float | None

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> Product:
        return cls(
            id=strawberry.ID(props["id"]),
            name=props.get("name"),
            category=props.get("category"),
            price=props.get("price"),
        )


@strawberry.type(description="One product line of a transaction.")
class LineItem:
    product: Product
    quantity: float
    unit_price: float | None
    amount: float


@strawberry.type(description="An order: the line items bought together.")
class Transaction:
    id: strawberry.ID
    at: datetime
    total: float
    channel: str | None
    item_count: float | None = strawberry.field(description="Units across all lines.")
    other_amount: float = strawberry.field(description="Value of lines that name no product.")
    line_rows: strawberry.Private[list[dict[str, Any]] | None] = None
    """The lines, by product id, when they came with the order (`Customer.transactions`)."""

    @classmethod
    def from_props(
        cls, props: dict[str, Any], line_rows: list[dict[str, Any]] | None = None
    ) -> Transaction:
        return cls(
            id=strawberry.ID(props["id"]),
            at=from_epoch_ms(props["at"]),  # type: ignore[arg-type]
            total=props.get("total") or 0.0,
            channel=props.get("channel"),
            item_count=props.get("itemCount"),
            other_amount=props.get("otherAmount") or 0.0,
            line_rows=line_rows,
        )

    @strawberry.field(
        description="Line items, by product id (a page).", graphql_type=Connection[LineItem]
    )
    def lines(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[LineItem] | Awaitable[Connection[LineItem]]:
        request = page_request("lines", LINE_ORDERING, first, after, last, before)
        # At once when the lines came with the order (no awaitable for GraphQL to gather), else
        # through the loader: one statement for all the orders it is asked for.
        if self.line_rows is not None:
            return _line_items(self.line_rows, request)
        return self._load_lines(info, request)

    async def _load_lines(self, info: Info, request: PageRequest) -> Connection[LineItem]:
        return _line_items(await info.context.loaders.lines.load(str(self.id)), request)


def _line_position(row: dict[str, Any]) -> tuple[None, str]:
    return None, str(row["product"]["id"])


def _line_items(rows: list[dict[str, Any]], request: PageRequest) -> Connection[LineItem]:
    """A page of an order's lines (`rows`, all of them, by product id). An order's lines come
    whole with it (a few per order), so the page is cut here, with the same keyset rule as the
    store's (`api.pagination.page_of`)."""
    return connection(
        page_of(rows, request, _line_position),
        request,
        LINE_ORDERING,
        _line_position,
        lambda r: LineItem(
            product=Product.from_props(r["product"]),
            quantity=r["quantity"],
            unit_price=r["unitPrice"],
            amount=r["amount"],
        ),
        len(rows),
    )


@strawberry.type(description="A contact with the customer: a call, a ticket, a chat...")
class Interaction:
    id: strawberry.ID
    type: InteractionType
    at: datetime
    channel: str | None
    subject: str | None
    sentiment: float | None = strawberry.field(description="-1 (negative) to 1 (positive).")
    satisfaction: int | None = strawberry.field(description="1 to 5.")

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> Interaction:
        return cls(
            id=strawberry.ID(props["id"]),
            type=InteractionType(props["type"]),
            at=from_epoch_ms(props["at"]),  # type: ignore[arg-type]
            channel=props.get("channel"),
            subject=props.get("subject"),
            sentiment=props.get("sentiment"),
            satisfaction=props.get("satisfaction"),
        )


@strawberry.type(description="What a customer bought of one product, over all orders.")
class ProductPurchase:
    product: Product
    quantity: float
    orders: int
    spend: float


@strawberry.type(description="A segment: customers grouped by a model.")
class Segment:
    id: strawberry.ID
    name: str | None
    model: str | None

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> Segment:
        return cls(id=strawberry.ID(props["id"]), name=props.get("name"), model=props.get("model"))


@strawberry.type(description="A product suggested to a customer, and why.")
class Recommendation:
    product: Product
    score: float
    reasons: list[str]


@strawberry.type(description="A social tie, seen from one customer.")
class SocialTie:
    type: TieType
    direction: TieDirection
    since: datetime | None
    weight: float | None
    customer: Customer = strawberry.field(description="The customer at the other end.")


@strawberry.type(description="A customer: profile, purchases, contacts, network (the 360 view).")
class Customer:
    id: strawberry.ID
    name: str | None
    city: str | None
    country: str | None
    signup_at: datetime | None
    props: strawberry.Private[dict[str, Any]]
    view: strawberry.Private[CustomerView] = NO_VIEW
    """The parts of the 360 view that came with the profile (`view_row` holds them)."""
    view_row: strawberry.Private[Row | None] = None
    """The profile's row of `customer_view_query(view)`."""

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> Customer:
        audit_trail.saw(props["id"])  # every customer an answer can show is in the request's audit
        return cls(
            id=strawberry.ID(props["id"]),
            name=props.get("name"),
            city=props.get("city"),
            country=props.get("country"),
            signup_at=from_epoch_ms(props.get("signupAt")),
            props=props,
        )

    @classmethod
    def from_view_row(cls, row: Row, view: CustomerView) -> Customer:
        """A customer from its row of `customer_view_query(view)`."""
        customer = cls.from_props(row["customer"])
        customer.view, customer.view_row = view, row
        return customer

    @strawberry.field(description="Email address; masked for partner keys.")
    def email(self, info: Info) -> str | None:
        value = self.props.get("email")
        return value if _sees_personal_data(info) else mask_email(value)

    @strawberry.field(description="Phone in E.164; masked for partner keys.")
    def phone(self, info: Info) -> str | None:
        value = self.props.get("phone")
        return value if _sees_personal_data(info) else mask_phone(value)

    @strawberry.field(description="Properties loaded from extra input columns (not for partners).")
    def attributes(self, info: Info) -> JSON | None:
        if not _sees_personal_data(info):
            return None
        return JSON({k: v for k, v in self.props.items() if k not in PROFILE_PROPERTIES})

    def _figure(self, info: Info, read: Callable[[dict[str, Any]], T]) -> T | Awaitable[T]:
        """A figure from the customer's orders: at once when they came with the profile (no
        awaitable for GraphQL to gather), else through the loader."""
        if self.view.figures and self.view_row is not None:
            return read(self.view_row)
        return self._load_figure(info, read)

    async def _load_figure(self, info: Info, read: Callable[[dict[str, Any]], T]) -> T:
        rows = await info.context.loaders.stats.load(str(self.id))
        return read(rows[0] if rows else {"orders": 0, "spend": 0.0, "first": None, "last": None})

    @strawberry.field(description="Sum of all orders' totals.", graphql_type=float)
    def total_spend(self, info: Info) -> float | Awaitable[float]:
        return self._figure(info, lambda f: float(f["spend"] or 0.0))

    @strawberry.field(graphql_type=int)
    def order_count(self, info: Info) -> int | Awaitable[int]:
        return self._figure(info, lambda f: int(f["orders"] or 0))

    @strawberry.field(graphql_type=datetime | None)
    def first_purchase_at(self, info: Info) -> datetime | Awaitable[datetime | None] | None:
        return self._figure(info, lambda f: from_epoch_ms(f["first"]))

    @strawberry.field(graphql_type=datetime | None)
    def last_purchase_at(self, info: Info) -> datetime | Awaitable[datetime | None] | None:
        return self._figure(info, lambda f: from_epoch_ms(f["last"]))

    @strawberry.field(
        description="Orders, newest first (a page); `from`/`to` keep those placed in a range.",
        graphql_type=Connection[Transaction],
    )
    def transactions(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        since: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        until: Annotated[datetime | None, strawberry.argument(name="to")] = None,
    ) -> Connection[Transaction] | Awaitable[Connection[Transaction]]:
        request, page = transaction_page(
            first, after, last, before, since, until, lines=items_ask_for(info, "lines")
        )
        if self.view.transactions == page and self.view_row is not None:  # came with the profile
            row = self.view_row
            return _transactions(row["transactions"], page, request, row["txTotal"])
        return self._load_transactions(info, page, request)

    async def _load_transactions(
        self, info: Info, page: TransactionPage, request: PageRequest
    ) -> Connection[Transaction]:
        loaders = info.context.loaders
        # with the lines, they come with the page: no second round trip for them
        loader = loaders.transactions_with_lines if page.lines else loaders.transactions
        rows = await loader.load((str(self.id), page))
        row: Row = rows[0] if rows else {"transactions": [], "total": 0}
        return _transactions(row["transactions"], page, request, row["total"])

    @strawberry.field(
        description="Contacts as a timeline, newest first (a page); filter by type and dates.",
        graphql_type=Connection[Interaction],
    )
    def interactions(
        self,
        info: Info,
        types: list[InteractionType] | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        since: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        until: Annotated[datetime | None, strawberry.argument(name="to")] = None,
    ) -> Connection[Interaction] | Awaitable[Connection[Interaction]]:
        request, page = interaction_page(types, first, after, last, before, since, until)
        if self.view.interactions == page and self.view_row is not None:
            row = self.view_row
            return _interactions(row["interactions"], request, row["ixTotal"])
        return self._load_interactions(info, page, request)

    async def _load_interactions(
        self, info: Info, page: InteractionPage, request: PageRequest
    ) -> Connection[Interaction]:
        rows = await info.context.loaders.interactions.load((str(self.id), page))
        row: Row = rows[0] if rows else {"interactions": [], "total": 0}
        return _interactions(row["interactions"], request, row["total"])

    @strawberry.field(description="Products bought, most units first (a page).")
    async def products_bought(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[ProductPurchase]:
        request = page_request("productsBought", PURCHASE_ORDERING, first, after, last, before)
        rows = await info.context.loaders.products_bought.load((str(self.id), keyset(request)))
        row: Row = rows[0] if rows else {"products": [], "total": 0}
        return connection(
            row["products"],
            request,
            PURCHASE_ORDERING,
            lambda r: (r["quantity"], str(r["product"]["id"])),
            lambda r: ProductPurchase(
                product=Product.from_props(r["product"]),
                quantity=r["quantity"],
                orders=r["orders"],
                spend=r["spend"],
            ),
            row["total"],
        )

    @strawberry.field(
        description="Social ties in both directions, with the other customer (a page), by type "
        "then the other customer's id.",
        graphql_type=Connection[SocialTie],
    )
    def social_ties(
        self,
        info: Info,
        types: list[TieType] | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[SocialTie] | Awaitable[Connection[SocialTie]]:
        request, page = tie_page(types, first, after, last, before)
        if self.view.ties == page and self.view_row is not None:  # came with the profile
            return _social_ties(self.view_row["ties"], request, self.view_row["tieTotal"])
        return self._load_social_ties(info, page, request)

    async def _load_social_ties(
        self, info: Info, page: TiePage, request: PageRequest
    ) -> Connection[SocialTie]:
        rows = await info.context.loaders.ties.load((str(self.id), page))
        row: Row = rows[0] if rows else {"ties": [], "total": 0}
        return _social_ties(row["ties"], request, row["total"])

    @strawberry.field
    async def segments(self, info: Info) -> list[Segment]:
        rows = await info.context.loaders.segments.load(str(self.id))
        return [Segment.from_props(r["segment"]) for r in rows]

    # -- analytics, as of the last `crm-graph train` (null until a model has scored them) ----

    @strawberry.field(description="RFM measures, scores and segment.")
    def rfm(self) -> Rfm | None:
        return rfm_of(self.props)

    @strawberry.field(description="Expected purchases and value over the CLV horizon.")
    def clv(self) -> Clv | None:
        return clv_of(self.props)

    @strawberry.field(description="Churn probability and the features driving it.")
    def churn_risk(self) -> ChurnRisk | None:
        return churn_of(self.props)

    @strawberry.field(description="The customer's segment from the segmentation model.")
    async def segment(self, info: Info) -> Segment | None:
        rows = await info.context.loaders.segments.load(str(self.id))
        found = [
            r["segment"]
            for r in rows
            if r["segment"].get("model") == score_properties.SEGMENT_MODEL
        ]
        return Segment.from_props(found[0]) if found else None

    @strawberry.field(description="Probability of buying each category (or one) in the horizon.")
    def demand(self, category: str | None = None) -> list[CategoryDemand]:
        return demand_of(self.props, category)

    @strawberry.field(
        description=f"Products to suggest, best first, never ones already bought (at most "
        f"{MAX_PAGE})."
    )
    async def recommendations(self, info: Info, first: int = 10) -> list[Recommendation]:
        check_first(first, "recommendations.first")
        items = score_properties.decode(self.props.get(score_properties.RECOMMENDATIONS), [])[
            :first
        ]
        found = await info.context.loaders.products.load_many([str(i["productId"]) for i in items])
        return [
            Recommendation(
                product=Product.from_props(rows[0]["product"]),
                score=float(i["score"]),
                reasons=[str(r) for r in i.get("reasons", [])],
            )
            for i, rows in zip(items, found, strict=True)
            if rows
        ]

    @strawberry.field(description="PageRank in the social graph (influence).")
    def pagerank(self) -> float | None:
        return stored_number(self.props.get(score_properties.PAGERANK))

    @strawberry.field(description="Community (Louvain) in the social graph.")
    def community(self) -> int | None:
        value = stored_number(self.props.get(score_properties.COMMUNITY))
        return None if value is None or not value.is_integer() else int(value)


def _transactions(
    items: list[Row], page: TransactionPage, request: PageRequest, total: int
) -> Connection[Transaction]:
    """A page of orders from the items the store cut: their properties, or with `page.lines`
    maps of `transaction` and `lines` (each order's lines then in product id order)."""
    if not page.lines:
        return connection(
            items,
            request,
            TRANSACTION_ORDERING,
            lambda t: (t["at"], str(t["id"])),
            Transaction.from_props,
            total,
        )
    return connection(
        items,
        request,
        TRANSACTION_ORDERING,
        lambda i: (i["transaction"]["at"], str(i["transaction"]["id"])),
        lambda i: Transaction.from_props(
            i["transaction"], sorted(i["lines"], key=lambda line: line["product"]["id"])
        ),
        total,
    )


def _interactions(items: list[Row], request: PageRequest, total: int) -> Connection[Interaction]:
    return connection(
        items,
        request,
        INTERACTION_ORDERING,
        lambda i: (i["at"], str(i["id"])),
        Interaction.from_props,
        total,
    )


def _social_ties(items: list[Row], request: PageRequest, total: int) -> Connection[SocialTie]:
    return connection(
        items,
        request,
        TIE_ORDERING,
        lambda r: (r["type"], str(r["cursorId"])),
        lambda r: SocialTie(
            type=TieType(r["type"]),
            direction=TieDirection.OUTGOING if r["outgoing"] else TieDirection.INCOMING,
            since=from_epoch_ms(r["since"]),
            weight=r["weight"],
            customer=Customer.from_props(r["customer"]),
        ),
        total,
    )


def _sees_personal_data(info: Info) -> bool:
    principal = info.context.principal
    return principal is not None and principal.sees_personal_data
