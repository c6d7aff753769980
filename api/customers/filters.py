"""Typed filter inputs for `customers(where: ...)`, and their translation to the plain spec that
`graph.filters.FilterBuilder` turns into Cypher."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime
from typing import Any

import strawberry

from crm_graph.api.scalars import to_epoch_ms


@strawberry.input(description="Conditions on a text field; contains/startsWith ignore case.")
class StringFilter:
    eq: str | None = None
    ne: str | None = None
    in_: list[str] | None = strawberry.field(name="in", default=None)
    contains: str | None = None
    starts_with: str | None = None
    is_null: bool | None = None


@strawberry.input(description="Conditions on an id.")
class IDFilter:
    eq: strawberry.ID | None = None
    in_: list[strawberry.ID] | None = strawberry.field(name="in", default=None)


@strawberry.input(description="Conditions on a number.")
class FloatFilter:
    eq: float | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None


@strawberry.input(description="Conditions on a whole number.")
class IntFilter:
    eq: int | None = None
    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None


@strawberry.input(description="Conditions on an instant.")
class DateTimeFilter:
    eq: datetime | None = None
    gt: datetime | None = None
    gte: datetime | None = None
    lt: datetime | None = None
    lte: datetime | None = None
    is_null: bool | None = None


@strawberry.input(description="Which customers: fields, computed figures, relationships, "
                  "combined with AND / OR / NOT.")  # fmt: skip
class CustomerFilter:
    and_: list[CustomerFilter] | None = strawberry.field(name="AND", default=None)
    or_: list[CustomerFilter] | None = strawberry.field(name="OR", default=None)
    not_: CustomerFilter | None = strawberry.field(name="NOT", default=None)
    id: IDFilter | None = None
    name: StringFilter | None = None
    email: StringFilter | None = None
    phone: StringFilter | None = None
    city: StringFilter | None = None
    country: StringFilter | None = None
    signup_at: DateTimeFilter | None = None
    total_spend: FloatFilter | None = None
    order_count: IntFilter | None = None
    bought_in_category: str | None = strawberry.field(
        default=None, description="Bought at least one product of this category."
    )
    bought_product: strawberry.ID | None = strawberry.field(
        default=None, description="Bought this product at least once."
    )
    in_segment: strawberry.ID | None = None
    knows: CustomerFilter | None = strawberry.field(
        default=None, description="Has a social tie (any type, either way) to a customer who..."
    )


@strawberry.enum
class CustomerOrderField(enum.Enum):
    ID = "ID"
    NAME = "NAME"
    COUNTRY = "COUNTRY"
    SIGNUP_AT = "SIGNUP_AT"
    TOTAL_SPEND = "TOTAL_SPEND"


@strawberry.enum
class SortDirection(enum.Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.input(description="Sort order; ties are always broken by id in the same direction.")
class CustomerOrder:
    field: CustomerOrderField = CustomerOrderField.ID
    direction: SortDirection = SortDirection.ASC


_NAMES = {"and_": "AND", "or_": "OR", "not_": "NOT", "in_": "in", "starts_with": "startsWith",
          "is_null": "isNull", "signup_at": "signupAt", "total_spend": "totalSpend",
          "order_count": "orderCount", "bought_in_category": "boughtInCategory",
          "bought_product": "boughtProduct", "in_segment": "inSegment"}  # fmt: skip
"""Python field name -> GraphQL name, where they differ."""

_INPUTS = (CustomerFilter, CustomerOrder, StringFilter, IDFilter, FloatFilter, IntFilter,
           DateTimeFilter)  # fmt: skip


def _walk(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """An input object as plain data under its GraphQL names (unset fields left out), each value
    that is not an input object (or a list of them) turned into plain data by `leaf`."""
    if isinstance(value, _INPUTS):
        return {
            _NAMES.get(name, name): _walk(item, leaf)
            for name in value.__dataclass_fields__
            if (item := getattr(value, name)) is not None
        }
    if isinstance(value, list):
        return [_walk(item, leaf) for item in value]
    return leaf(value)


def _spec_value(value: Any) -> Any:
    return to_epoch_ms(value) if isinstance(value, datetime) else value


def _input_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def to_spec(value: Any) -> Any:
    """An input object as the builder's plain spec (GraphQL names, instants as epoch ms)."""
    return _walk(value, _spec_value)


def to_input(value: Any) -> Any:
    """An input object as the JSON a client sends for it (GraphQL names, instants in ISO 8601,
    enums by name): what a saved view keeps, and gives back to be sent as `where` again."""
    return _walk(value, _input_value)
