"""The customer 360 look-ahead planner: what a `customer(id)` selection asks of the 360 view,
so that its parts (order figures, a page of orders with or without their lines, a page of
contacts, a page of ties) come with the profile in one statement (`graph.customer_reads.
customer_view_query`), each reading only the properties its selection needs.

It reads the query's syntax tree through graphql-core's resolve info (`selection_info`, the one
private access, guarded, with a fallback): Strawberry's public `Info.selected_fields` converts
the whole selection below the field on every call and expands each fragment spread afresh, so
n fragments each spreading the next twice are 2^n conversions. Measured here (strawberry
0.341.3, `convert_selections` on `customer { ...F0 }`): 12 fragments 0.43 s, 14 fragments
1.7 s, 16 fragments (773 bytes, within every depth, alias and cost limit: they select scalars)
17 s of blocked event loop. The walk here visits each fragment once, and plans are cached by the
document's nodes (parsed documents are cached, `api.schema`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar, cast

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    Undefined,
    value_from_ast,
)
from strawberry.types import Info

from crm_graph.api.customers.pages import interaction_page, tie_page, transaction_page
from crm_graph.graph.customer_reads import CustomerView

T = TypeVar("T")

NO_VIEW = CustomerView()
READ_SELECTED_PROPERTIES = True
"""Whether the 360 view reads of the nodes below the profile only the properties its selection
needs (`NodeReads`); False: whole nodes."""


class SelectionInfo(Protocol):
    """What the planner reads of graphql-core's resolve info: the current field's nodes, the
    document's fragments, the schema and the request's variables."""

    @property
    def field_nodes(self) -> list[FieldNode]: ...
    @property
    def fragments(self) -> dict[str, FragmentDefinitionNode]: ...
    @property
    def schema(self) -> GraphQLSchema: ...
    @property
    def variable_values(self) -> Any: ...


def selection_info(info: Info[Any, Any]) -> SelectionInfo | None:
    """The resolve info behind Strawberry's `Info` (its private `_raw_info`: Strawberry 0.341
    keeps there a copy of graphql-core's `GraphQLResolveInfo` of its own class), checked to
    hold what the planner reads, or None when it does not (module docstring: why not the public
    `selected_fields`). None is the public path: no part of the view comes with the profile
    (each field loads its own page: the same answer, one statement per part), and a page of
    orders brings their lines whether asked or not (`items_ask_for`)."""
    raw = getattr(info, "_raw_info", None)
    nodes = getattr(raw, "field_nodes", None)
    if (
        isinstance(getattr(raw, "schema", None), GraphQLSchema)
        and isinstance(getattr(raw, "fragments", None), dict)
        and isinstance(nodes, list | tuple)
        and all(isinstance(node, FieldNode) for node in nodes)
        and hasattr(raw, "variable_values")
    ):
        return cast(SelectionInfo, raw)
    return None


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
            read: Iterable[str] | None
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


# -- what each type's objects read of their node (field names as in GraphQL) -------------------

PRODUCT_READS = NodeReads(frozenset({"id"}), _own("id", "name", "category", "price"))
"""`Product.from_props` reads `id`; each field its own property."""


LINE_ITEM_READS = NodeReads(
    frozenset({"id"}),
    dict.fromkeys(("quantity", "unitPrice", "amount"), frozenset()),
    through=("product", PRODUCT_READS),
)
"""Of the product: `id` (`_line_items` builds it, and orders the lines by it); the line's own
fields read the CONTAINS relation."""


TRANSACTION_READS = NodeReads(
    frozenset({"id", "at"}),
    _own("id", "at", "total", "channel", "itemCount", "otherAmount") | {"lines": frozenset({"id"})},
)
"""`Transaction.from_props` reads `id` and `at`; `lines` loads by `id` when they did not come with
the order; the other fields each read their own property."""


INTERACTION_READS = NodeReads(
    frozenset({"id", "type", "at"}),
    _own("id", "type", "at", "channel", "subject", "sentiment", "satisfaction"),
)
"""`Interaction.from_props` reads `id`, `type` and `at`; each field its own property."""


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
    """Whether the order figures come (the pages come with their arguments, per request)."""
    transactions: FieldNode | None
    lines: bool
    interactions: FieldNode | None
    ties: FieldNode | None
    selected: CustomerView
    """Every part's properties (`_selected_properties`), taken for the pages that come."""


CACHED_VIEW_PLANS = 512
_VIEW_PLANS: dict[tuple[bool, tuple[int, ...]], _ViewPlan] = {}


def _view_plan(raw: SelectionInfo) -> _ViewPlan:
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


def customer_view(info: Info[Any, Any]) -> CustomerView:
    """The parts of the 360 view that the selection of the current field (a `Customer`) asks
    for, with the arguments they are asked with, to come with the profile (`CustomerView`): the
    order figures, the pages of `transactions`, `interactions` and `socialTies`. A page
    asked for more than once (aliases) comes with its first; a page whose arguments cannot be
    read here (a variable without a value) does not come: the field then loads its own,
    as it does whenever its arguments differ from the view's. Of the orders, products,
    interactions and ties' customers, the view reads the properties that every occurrence of
    their field needs together (`_selected_properties`). All but the pages' arguments is worked out
    once per selection (`_view_plan`)."""
    raw = selection_info(info)
    if raw is None:
        return NO_VIEW
    plan = _view_plan(raw)
    view, selected = plan.view, plan.selected
    definition = raw.schema.get_type("Customer")
    assert isinstance(definition, GraphQLObjectType)
    # graphql-core 3.3 keeps the coerced values in `coerced`
    given: Any = raw.variable_values
    variables: dict[str, Any] = getattr(given, "coerced", given)
    fields = definition.fields
    if plan.transactions is not None:
        orders = _checked(
            transaction_page,
            _arguments(fields["transactions"].args, plan.transactions, variables),
            lines=plan.lines,
        )
        if orders is not None:
            view = replace(
                view,
                transactions=orders[1],
                transaction_properties=selected.transaction_properties,
                product_properties=selected.product_properties,
            )
    if plan.interactions is not None:
        contacts = _checked(
            interaction_page, _arguments(fields["interactions"].args, plan.interactions, variables)
        )
        if contacts is not None:
            view = replace(
                view,
                interactions=contacts[1],
                interaction_properties=selected.interaction_properties,
            )
    if plan.ties is not None:
        ties = _checked(tie_page, _arguments(fields["socialTies"].args, plan.ties, variables))
        if ties is not None:
            view = replace(
                view, ties=ties[1], tie_customer_properties=selected.tie_customer_properties
            )
    return view


def _checked(build: Callable[..., T], arguments: dict[str, Any] | None, **extra: Any) -> T | None:
    """What `build` makes of a page's `arguments`, or None when they cannot be read here
    (None) or it refuses them (a page too large, a cursor that is none): the field then loads
    its own page, or refuses the arguments itself, naming the argument."""
    if arguments is None:
        return None
    try:
        return build(**arguments, **extra)
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


def items_ask_for(info: Info[Any, Any], name: str) -> bool:
    """Whether the items of the current field (a connection) are asked for their field `name`
    (a GraphQL name, through fragments), read from the query's syntax tree; True on the public
    path (`selection_info`), where reading Strawberry's selection could take exponential time."""
    raw = selection_info(info)
    if raw is None:
        return True
    return name in _all_fields(_items(raw.field_nodes, raw.fragments), raw.fragments)
