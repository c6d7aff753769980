"""`recordInteraction`: record a contact with a customer (a call, a ticket, a chat...)."""

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
from crm_graph.api.customers.types import Interaction
from crm_graph.api.permissions import CanWrite
from crm_graph.graph import customer_reads
from crm_graph.graph.schema import InteractionType
from crm_graph.loaders import validate

FIELDS = {"interaction_id": "id", "customer_id": "customerId", "timestamp": "at"}


@strawberry.input
class InteractionInput:
    id: strawberry.ID
    customer_id: strawberry.ID
    at: datetime
    type: InteractionType
    channel: str | None = None
    subject: str | None = None
    sentiment: float | None = strawberry.field(default=None, description="-1 to 1.")
    satisfaction: int | None = strawberry.field(default=None, description="1 to 5.")


@strawberry.type
class RecordInteractionSuccess:
    interaction: Interaction


@strawberry.type
class RecordInteractionError(MutationError):
    pass


RecordInteractionResult = Annotated[
    RecordInteractionSuccess | RecordInteractionError, strawberry.union("RecordInteractionResult")
]


@strawberry.type
class RecordInteractionMutation:
    @strawberry.mutation(
        description="Record (or update) a contact with a customer.", permission_classes=[CanWrite]
    )
    async def record_interaction(
        self, info: Info, input: InteractionInput
    ) -> RecordInteractionResult:
        row = raw_row(
            {
                "interaction_id": input.id,
                "customer_id": input.customer_id,
                "timestamp": input.at,
                "type": input.type,
                "channel": input.channel,
                "subject": input.subject,
                "sentiment": input.sentiment,
                "satisfaction": input.satisfaction,
            }
        )
        record, rejects = validate.interaction("input", row)
        found = problems(rejects, FIELDS, prefix="input.")
        if found or record is None:
            return failure(RecordInteractionError, ErrorCode.INVALID, found)
        late = await writer(info.context.store).write_interactions("input", [record])
        if late:
            return late_failure(RecordInteractionError, late, FIELDS)
        audit_trail.wrote([str(input.customer_id)])  # written: the id exists
        rows = await info.context.store.read(
            customer_reads.INTERACTION_BY_ID, {"id": str(input.id)}
        )
        return RecordInteractionSuccess(interaction=Interaction.from_props(rows[0]["interaction"]))
