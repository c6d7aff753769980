"""`linkCustomers`: record a social tie between two customers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from crm_graph.api import audit_trail
from crm_graph.api.customers.mutations import (
    ErrorCode,
    MutationError,
    failure,
    late_failure,
    problems,
    raw_row,
    writer,
)
from crm_graph.api.network.queries import Tie
from crm_graph.api.permissions import CanWrite
from crm_graph.graph import network
from crm_graph.graph.schema import TieType
from crm_graph.loaders import validate

FIELDS = {"source_customer_id": "sourceId", "target_customer_id": "targetId"}


@strawberry.input
class LinkCustomersInput:
    source_id: strawberry.ID
    target_id: strawberry.ID
    type: TieType = TieType.KNOWS
    since: datetime | None = None
    weight: float | None = None


@strawberry.type
class LinkCustomersSuccess:
    tie: Tie


@strawberry.type
class LinkCustomersError(MutationError):
    pass


LinkCustomersResult = Annotated[
    LinkCustomersSuccess | LinkCustomersError, strawberry.union("LinkCustomersResult")
]


@strawberry.type
class LinkCustomersMutation:
    @strawberry.mutation(
        description="Tie two customers (or update the tie's since and weight).",
        permission_classes=[CanWrite],
    )
    async def link_customers(self, info: Info, input: LinkCustomersInput) -> LinkCustomersResult:
        row = raw_row(
            {
                "source_customer_id": input.source_id,
                "target_customer_id": input.target_id,
                "type": input.type,
                "since": input.since,
                "weight": input.weight,
            }
        )
        record, rejects = validate.tie("input", row)
        found = problems(rejects, FIELDS, prefix="input.")
        if found or record is None:
            return failure(LinkCustomersError, ErrorCode.INVALID, found)
        batch = writer(info.context.store)
        late = await batch.write_ties("input", [record])
        if late:
            return late_failure(LinkCustomersError, late, FIELDS)
        resolved = await batch.customers_of({record.source_id, record.target_id})
        rows = await info.context.store.read(
            network.expand_ties([record.type]), {"ids": [resolved[record.source_id]]}
        )
        target = resolved[record.target_id]
        audit_trail.wrote([resolved[record.source_id], target])  # written: the ids exist
        tie = next(network.tie_of(r) for r in rows if r["to"] == target and r["outgoing"])
        return LinkCustomersSuccess(tie=Tie.of(tie))
