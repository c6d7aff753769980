"""Mutations of the customer domain: one file per mutation, typed results.

Expected failures are results, not exceptions: each mutation returns `<Name>Success` or
`<Name>Error` (a code, a message, the offending field, and every problem found). Writes go
through `loaders.load.BatchWriter`, so the API validates and writes exactly as `crm-graph load`
does (identity resolution included), except that a malformed optional value is an error here
instead of being dropped: a caller can fix and resend.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

import strawberry

from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import BatchWriter
from crm_graph.loaders.reading import RawRow, Reject, RejectCode


@strawberry.enum
class ErrorCode(enum.Enum):
    INVALID = "INVALID"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"


@strawberry.type(description="One thing wrong with the input.")
class Problem:
    field: str
    message: str


@strawberry.interface(description="Why a mutation changed nothing.")
class MutationError:
    code: ErrorCode
    message: str
    field: str | None = strawberry.field(description="The first offending input field.")
    problems: list[Problem]


E = TypeVar("E", bound=MutationError)


def failure(error: type[E], code: ErrorCode, found: list[Problem]) -> E:
    """An error result whose message and field are the first problem's."""
    return error(code=code, message=found[0].message, field=found[0].field, problems=found)


def late_failure(error: type[E], rejects: list[Reject], fields: Mapping[str, str]) -> E:
    """An error result for a row the writer refused after its look-ups (an unknown customer,
    a conflict, a self-tie)."""
    reject = rejects[0]
    field = f"input.{fields.get(reject.column, reject.column)}"
    return failure(error, _ERROR_CODES[reject.code], [Problem(field=field, message=reject.reason)])


_ERROR_CODES = {
    RejectCode.INVALID: ErrorCode.INVALID,
    RejectCode.UNKNOWN_CUSTOMER: ErrorCode.NOT_FOUND,
    RejectCode.CONFLICT: ErrorCode.CONFLICT,
}
"""A mutation's error code for each reason the writer refuses a row."""


def writer(store: GraphStore) -> BatchWriter:
    """A writer for one mutation: its own load id, so that re-recording replaces."""
    return BatchWriter(store, uuid.uuid4().hex, batch_size=1000, region=None, progress=False)


def raw_row(values: Mapping[str, Any], line: int = 1) -> RawRow:
    """Input values as the loader reads them from a file: text, empty for none."""
    return RawRow(line, {name: _text(value) for name, value in values.items()})


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return str(value)


def problems(rejects: list[Reject], fields: Mapping[str, str], prefix: str = "") -> list[Problem]:
    """Loader rejects (by file column) as problems (by input field path)."""
    return [
        Problem(field=f"{prefix}{fields.get(r.column, r.column)}", message=r.reason)
        for r in rejects
    ]
