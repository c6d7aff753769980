"""The saved view as the API shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from crm_graph.api.scalars import from_epoch_ms
from crm_graph.graph import score_properties


@strawberry.type(
    description="A filter of the `customers` query saved under a name; open it in the explore "
    "page at /explore#view=<name>, or send `filter` as `customers(where:)` and `orderBy` as "
    "`customers(orderBy:)`."
)
class SavedView:
    name: str
    filter: JSON = strawberry.field(description="A CustomerFilter, as sent.")
    order_by: JSON | None = strawberry.field(description="A CustomerOrder, as sent.")
    description: str | None
    created_at: datetime | None
    created_by: str | None = strawberry.field(description="The name of the key that saved it.")
    updated_at: datetime | None
    updated_by: str | None

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> SavedView:
        return cls(
            name=props["name"],
            filter=score_properties.decode(props.get("filter"), {}),
            order_by=score_properties.decode(props.get("orderBy"), None),
            description=props.get("description"),
            created_at=from_epoch_ms(props.get("createdAt")),
            created_by=props.get("createdBy"),
            updated_at=from_epoch_ms(props.get("updatedAt")),
            updated_by=props.get("updatedBy"),
        )
