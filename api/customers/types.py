"""GraphQL types of the customer 360 view."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any, TypeVar

import strawberry
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    SelectionSetNode,
    Undefined,
    value_from_ast,
)
from strawberry.scalars import JSON
from strawberry.types import Info

from crm_graph.api import audit_trail
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
from crm_graph.api.scalars import from_epoch_ms, to_epoch_ms
from crm_graph.graph import score_properties
from crm_graph.graph.customer_reads import (
    PROFILE_PROPERTIES,
    CustomerView,
    InteractionPage,
    TiePage,
    TransactionPage,
)
from crm_graph.graph.pages import KeysetPage
from crm_graph.graph.store import Row

T = TypeVar("T")

# MAX_PAGE (api.pagination): the largest `first` any list field accepts; larger asks are refused
# before the store.
TRANSACTION_ORDERING = "TRANSACTIONS"
INTERACTION_ORDERING = "INTERACTIONS"
TIE_ORDERING = "SOCIAL_TIES"
PURCHASE_ORDERING = "PRODUCTS_BOUGHT"
LINE_ORDERING = "LINES"
"""What the cursors of a customer's orders, contacts, ties and products bought, and of an
order's lines, are made for (`api.pagination`)."""
NO_VIEW = CustomerView()
READ_SELECTED_PROPERTIES = True
"""Whether the 360 view reads of the nodes below the profile only the properties its selection
needs (`NodeReads`); False: whole nodes."""


def check_first(first: int, field: str) -> None:
    if first < 0 or first > MAX_PAGE:
        raise user_error(f"first must be between 0 and {MAX_PAGE}", field=field, max=MAX_PAGE)


@dataclass(frozen=True)
class NodeReads:
    """The properties a GraphQL type's objects read of the node they are built from (a line's:
    of its product; a tie's: of the customer at the other end): `always` whatever the selection
    (to be built, ordered, or to load more by), and per field those its resolver reads. A field
    not in `by_field` may read any: a selection asking for it needs the whole node. `through`:
    the field whose object is that node (`LineItem.product`), with what that object reads."""

    always: frozenset[str]
    by_field: Mapping[str, frozenset[str]]
    through: tuple[str, NodeReads] | None = None

    def needed_by(
        self, nodes: Iterable[FieldNode], fragments: dict[str, FragmentDefinitionNode]
    ) -> tuple[str, ...] | None:
        """The properties (sorted) that the selections of `nodes`, fields of this type, need
        together; None: the whole node."""
        needed = set(self.always)
        for name, occurrences in _all_fields(nodes, fragments).items():
            if name == "__typename":
                continue
            if self.through is not None and name == self.through[0]:
                read = self.through[1].needed_by(occurrences, fragments)
            else:
                read = self.by_field.get(name)
            if read is None:
                return None
            needed.update(read)
        return tuple(sorted(needed))


def _own(*names: str) -> dict[str, frozenset[str]]:
    """Fields that each read the property of their own name."""
    return {name: frozenset({name}) for name in names}


@strawberry.enum(description="How an interaction with the customer happened.")
class InteractionType(enum.Enum):
    CALL = "call"
    EMAIL = "email"
    CHAT = "chat"
    MEETING = "meeting"
    TICKET = "ticket"
    SOCIAL = "social"
    WEB = "web"


@strawberry.enum(description="The kind of social tie between two customers.")
class TieType(enum.Enum):
    KNOWS = "KNOWS"
    REFERRED = "REFERRED"
    FAMILY = "FAMILY"
    COLLEAGUE = "COLLEAGUE"


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


PRODUCT_READS = NodeReads(frozenset({"id"}), _own("id", "name", "category", "price"))
"""`Product.from_props` reads `id`; each field its own property."""


@strawberry.type(description="One product line of a transaction.")
class LineItem:
    product: Product
    quantity: float
    unit_price: float | None
    amount: float


LINE_ITEM_READS = NodeReads(
    frozenset({"id"}),
    dict.fromkeys(("quantity", "unitPrice", "amount"), frozenset()),
    through=("product", PRODUCT_READS),
)
"""Of the product: `id` (`_line_items` builds it, and orders the lines by it); the line's own
fields read the CONTAINS relation."""


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


TRANSACTION_READS = NodeReads(
    frozenset({"id", "at"}),
    _own("id", "at", "total", "channel", "itemCount", "otherAmount") | {"lines": frozenset({"id"})},
)
"""`Transaction.from_props` reads `id` and `at`; `lines` loads by `id` when they did not come with
the order; the other fields each read their own property."""


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


INTERACTION_READS = NodeReads(
    frozenset({"id", "type", "at"}),
    _own("id", "type", "at", "channel", "subject", "sentiment", "satisfaction"),
)
"""`Interaction.from_props` reads `id`, `type` and `at`; each field its own property."""


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
        return {k: v for k, v in self.props.items() if k not in PROFILE_PROPERTIES}

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
            first, after, last, before, since, until, lines=_items_ask_for(info, "lines")
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
        row = rows[0] if rows else {"transactions": [], "total": 0}
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
        row = rows[0] if rows else {"interactions": [], "total": 0}
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
        row = rows[0] if rows else {"products": [], "total": 0}
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
        row = rows[0] if rows else {"ties": [], "total": 0}
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


CUSTOMER_READS = NodeReads(
    frozenset({"id"}),
    _own("id", "name", "city", "country", "signupAt", "email", "phone"),
)
"""Of a customer built from its node (a tie's other end): `Customer.from_props` reads `id`; the
profile fields (`email` and `phone` masked or not) each read their own property. Any other field
(`attributes`, the analytics, figures and pages loaded by id) is not listed: the whole node."""

SOCIAL_TIE_READS = NodeReads(
    frozenset({"id"}),
    dict.fromkeys(("type", "direction", "since", "weight"), frozenset()),
    through=("customer", CUSTOMER_READS),
)
"""Of the customer at the other end: `id` (`_social_ties` builds it; the ties that come with the
profile are ordered by it); the tie's own fields read the relation."""


def keyset(request: PageRequest) -> KeysetPage:
    """The page the store cuts (`graph.pages`) for a page's checked arguments."""
    return KeysetPage(request.size, request.backwards, request.cursor)


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


def transaction_page(
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    lines: bool,
) -> tuple[PageRequest, TransactionPage]:
    """`Customer.transactions`' arguments, checked, and as the statement takes them."""
    request = page_request("transactions", TRANSACTION_ORDERING, first, after, last, before)
    return request, TransactionPage(keyset(request), to_epoch_ms(since), to_epoch_ms(until), lines)


def interaction_page(
    types: list[InteractionType] | None = None,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[PageRequest, InteractionPage]:
    """`Customer.interactions`' arguments, checked, and as the statement takes them."""
    request = page_request("interactions", INTERACTION_ORDERING, first, after, last, before)
    kinds = tuple(sorted(t.value for t in types)) if types else None
    return request, InteractionPage(keyset(request), kinds, to_epoch_ms(since), to_epoch_ms(until))


def tie_page(
    types: list[TieType] | None = None,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> tuple[PageRequest, TiePage]:
    """`Customer.socialTies`' arguments, checked, and as the statement takes them (no types:
    every type)."""
    request = page_request("socialTies", TIE_ORDERING, first, after, last, before)
    kinds = tuple(sorted(t.value for t in types)) if types else None
    return request, TiePage(keyset(request), kinds)


ORDER_FIGURES = frozenset({"totalSpend", "orderCount", "firstPurchaseAt", "lastPurchaseAt"})
"""The `Customer` fields computed from the customer's orders (`Customer._figure`)."""

_PYTHON_ARGUMENTS = {"from": "since", "to": "until"}
"""GraphQL argument names that are not the resolvers' parameter names."""


@dataclass(frozen=True)
class _ViewPlan:
    """What a customer's selection asks of the 360 view, apart from the values of the pages'
    arguments (which may come from variables): worked out once per selection (`_view_plan`)."""

    nodes: tuple[FieldNode, ...]
    """The selection's field nodes: kept alive while the plan is cached under their ids."""
    view: CustomerView
    """The figures, the ties and, when reading selected properties, the ties' customers'."""
    transactions: FieldNode | None
    lines: bool
    interactions: FieldNode | None
    ties: FieldNode | None
    selected: CustomerView
    """Every part's properties (`_selected_properties`), taken for the pages that come."""


CACHED_VIEW_PLANS = 512
_VIEW_PLANS: dict[tuple[bool, tuple[int, ...]], _ViewPlan] = {}


def _view_plan(raw: Any) -> _ViewPlan:
    """The plan of the selection of `raw` (a GraphQL resolve info). The parsed documents are
    cached (`api.schema`), so the same query text brings the same field nodes: plans are kept
    under the nodes' ids (the plan holds the nodes, so the ids stay theirs), at most
    `CACHED_VIEW_PLANS` of them, the oldest dropped first. The fragments belong to the same
    document as the nodes, so the ids decide them too."""
    key = (READ_SELECTED_PROPERTIES, tuple(map(id, raw.field_nodes)))
    plan = _VIEW_PLANS.get(key)
    if plan is not None:
        return plan
    occurrences = _all_fields(raw.field_nodes, raw.fragments)  # the selection, walked once
    fields = {name: found[0] for name, found in occurrences.items()}
    view = CustomerView(figures=not ORDER_FIGURES.isdisjoint(fields))
    transactions = fields.get("transactions")
    lines = transactions is not None and bool(
        _all_fields(_items([transactions], raw.fragments), raw.fragments).get("lines")
    )
    ties = fields.get("socialTies")
    selected = NO_VIEW
    if READ_SELECTED_PROPERTIES:  # of every part: each page takes its own when it comes
        selected = _selected_properties(
            occurrences, raw.fragments, lines=lines, ties=ties is not None
        )
    plan = _ViewPlan(
        tuple(raw.field_nodes), view, transactions, lines, fields.get("interactions"), ties,
        selected,
    )  # fmt: skip
    if len(_VIEW_PLANS) >= CACHED_VIEW_PLANS:
        del _VIEW_PLANS[next(iter(_VIEW_PLANS))]
    _VIEW_PLANS[key] = plan
    return plan


def customer_view(info: Info) -> CustomerView:
    """The parts of the 360 view that the selection of the current field (a `Customer`) asks
    for, with the arguments they are asked with, to come with the profile (`CustomerView`): the
    order figures, the pages of `transactions` and `interactions`, the `socialTies`. A page
    asked for more than once (aliases) comes with its first; a page whose arguments cannot be
    read here (a variable without a value) does not come: the field then loads its own,
    as it does whenever its arguments differ from the view's. Of the orders, products,
    interactions and ties' customers, the view reads the properties that every occurrence of
    their field needs together (`_selected_properties`). All but the pages' arguments is worked out
    once per selection (`_view_plan`)."""
    raw = info._raw_info
    plan = _view_plan(raw)
    view, selected = plan.view, plan.selected
    definition = raw.schema.get_type("Customer")
    variables = getattr(raw.variable_values, "coerced", raw.variable_values)  # graphql-core 3.3
    if (node := plan.transactions) is not None:
        arguments = _arguments(definition.fields["transactions"].args, node, variables)
        if arguments is not None and (
            found := _checked(lambda: transaction_page(**arguments, lines=plan.lines))
        ):
            view = replace(
                view,
                transactions=found[1],
                transaction_properties=selected.transaction_properties,
                product_properties=selected.product_properties,
            )
    if (node := plan.interactions) is not None:
        arguments = _arguments(definition.fields["interactions"].args, node, variables)
        if arguments is not None and (found := _checked(lambda: interaction_page(**arguments))):
            view = replace(
                view,
                interactions=found[1],
                interaction_properties=selected.interaction_properties,
            )
    if (node := plan.ties) is not None:
        arguments = _arguments(definition.fields["socialTies"].args, node, variables)
        if arguments is not None and (found := _checked(lambda: tie_page(**arguments))):
            view = replace(
                view, ties=found[1], tie_customer_properties=selected.tie_customer_properties
            )
    return view


def _checked(build: Callable[[], T]) -> T | None:
    """What `build` makes of a page's arguments, or None when it refuses them (a page too
    large, a cursor that is none): the field then refuses them itself, naming the argument."""
    try:
        return build()
    except GraphQLError:
        return None


def _selected_properties(
    fields: dict[str, list[FieldNode]],
    fragments: dict[str, FragmentDefinitionNode],
    *,
    lines: bool,
    ties: bool,
) -> CustomerView:
    """The properties that the customer's selection (`fields`: `_all_fields` of it) needs of the
    nodes of each part of the view (of the lines' products when the orders come with `lines`,
    of the ties' customers when `ties` come): over every occurrence of the part's field (a page
    of orders or contacts asked for with other arguments under an alias loads its own; reading
    its needs too costs a few keys, never a wrong answer). A view of those properties only."""

    def needed(reads: NodeReads, occurrences: list[FieldNode]) -> tuple[str, ...] | None:
        return reads.needed_by(occurrences, fragments)

    orders = _items(fields.get("transactions", []), fragments)
    products = _items(_all_fields(orders, fragments).get("lines", []), fragments) if lines else None
    contacts = _items(fields.get("interactions", []), fragments)
    return CustomerView(
        transaction_properties=needed(TRANSACTION_READS, orders),
        product_properties=None if products is None else needed(LINE_ITEM_READS, products),
        interaction_properties=needed(INTERACTION_READS, contacts),
        tie_customer_properties=(
            needed(SOCIAL_TIE_READS, _items(fields.get("socialTies", []), fragments))
            if ties
            else None
        ),
    )


def _arguments(
    definitions: dict[str, Any], node: FieldNode, variables: dict[str, Any]
) -> dict[str, Any] | None:
    """The arguments a field node gives (not their defaults), by the resolver's parameter
    names, as GraphQL coerces them; None when one has no value here."""
    found: dict[str, Any] = {}
    for argument in node.arguments or ():
        name = argument.name.value
        value = value_from_ast(argument.value, definitions[name].type, variables)
        if value is Undefined:
            return None
        found[_PYTHON_ARGUMENTS.get(name, name)] = value
    return found


def _items(
    connections: Iterable[FieldNode], fragments: dict[str, FragmentDefinitionNode]
) -> list[FieldNode]:
    """The field nodes whose selections are of the items of the connections `connections` (the
    `nodes`, and the `node` of the `edges`), through fragments."""
    fields = _all_fields(connections, fragments)
    return fields.get("nodes", []) + _all_fields(fields.get("edges", []), fragments).get("node", [])


def _all_fields(
    nodes: Iterable[FieldNode], fragments: dict[str, FragmentDefinitionNode]
) -> dict[str, list[FieldNode]]:
    """The fields the selections of `nodes` ask for (through fragments, inline or named), by
    GraphQL name: every node of each (under any alias), in the order of the document. A
    fragment is walked once however often it is spread (its nodes are the same each time): 19
    fragments each spreading the next twice were 2^19 walks."""
    found: dict[str, list[FieldNode]] = {}
    walked: set[str] = set()

    def walk(selection_set: SelectionSetNode | None) -> None:
        for item in selection_set.selections if selection_set else ():
            if isinstance(item, FieldNode):
                found.setdefault(item.name.value, []).append(item)
            elif isinstance(item, InlineFragmentNode):
                walk(item.selection_set)
            elif isinstance(item, FragmentSpreadNode) and item.name.value not in walked:
                walked.add(item.name.value)
                fragment = fragments.get(item.name.value)
                if fragment is not None:
                    walk(fragment.selection_set)

    for node in nodes:
        walk(node.selection_set)
    return found


def _items_ask_for(info: Info, name: str) -> bool:
    """Whether the items of the current field (a connection) are asked for their field `name`
    (a GraphQL name, through fragments). Read from the query's syntax tree: Strawberry's
    `selected_fields` converts the whole selection below the field first."""
    raw = info._raw_info
    return name in _all_fields(_items(raw.field_nodes, raw.fragments), raw.fragments)


def _sees_personal_data(info: Info) -> bool:
    principal = info.context.principal
    return principal is not None and principal.sees_personal_data
