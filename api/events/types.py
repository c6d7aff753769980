"""The GraphQL types of change events: `EventType` (the outbox's catalogue, `graph.events`) and
`ChangeEvent`, an event as a subscriber may see it."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from crm_graph.api.scalars import from_epoch_ms
from crm_graph.graph.events import EVENT_TYPES, Event


def _member(event_type: str) -> str:
    """`customer.updated` -> `CUSTOMER_UPDATED`."""
    return event_type.upper().replace(".", "_").replace("-", "_")


_EVENT_TYPES: Any = enum.Enum("EventType", {_member(t): t for t in EVENT_TYPES})  # type: ignore[misc]
EventType = strawberry.enum(
    _EVENT_TYPES,
    description="What an event says happened; its value is the outbox's name (customer.updated "
    "is CUSTOMER_UPDATED).",
)


@strawberry.type(description="One committed change, from the outbox, as this key may see it.")
class ChangeEvent:
    sequence: int = strawberry.field(
        description="Its place in the outbox: increasing, never reused; resubscribe with "
        "fromSequence set to the last one received to miss nothing."
    )
    type: EventType  # type: ignore[valid-type]
    at: datetime = strawberry.field(description="When the change committed.")
    customer_ids: list[strawberry.ID] = strawberry.field(
        description="The customers the change is about (all in this key's customer scope)."
    )
    data: JSON = strawberry.field(
        description="What changed: ids, the names of the fields written, amounts as text; "
        "never personal values (email, phone and attributes keys are left out without the "
        "contact_details scope)."
    )

    @classmethod
    def of(cls, event: Event, data: dict[str, Any]) -> ChangeEvent:
        return cls(
            sequence=event.sequence,
            type=EventType(event.type),
            at=from_epoch_ms(event.at_ms),  # type: ignore[arg-type]
            customer_ids=[strawberry.ID(c) for c in event.customer_ids],
            data=cast(JSON, data),
        )
