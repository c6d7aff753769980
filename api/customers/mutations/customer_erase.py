"""`eraseCustomer`: the right to be forgotten."""

from __future__ import annotations

import contextlib
import time
from typing import Annotated

import strawberry
from strawberry.types import Info

from crm_graph.api import audit_trail
from crm_graph.api.customers.mutations import ErrorCode, MutationError, Problem, failure
from crm_graph.api.permissions import CanWrite
from crm_graph.graph import writes


@strawberry.type
class EraseCustomerSuccess:
    erased_id: strawberry.ID
    anonymous_id: strawberry.ID = strawberry.field(
        description="The id the customer's anonymised orders now hang from."
    )


@strawberry.type
class EraseCustomerError(MutationError):
    pass


EraseCustomerResult = Annotated[
    EraseCustomerSuccess | EraseCustomerError, strawberry.union("EraseCustomerResult")
]


@strawberry.type
class EraseCustomerMutation:
    @strawberry.mutation(
        description="Remove a customer's personal data, contacts, source records and ties; keep "
        "their orders, anonymised, so revenue totals do not change. Remove them from the "
        "source exports too, or the next load brings them back.",
        permission_classes=[CanWrite],
    )
    async def erase_customer(self, info: Info, id: strawberry.ID) -> EraseCustomerResult:
        writer = info.context.audit_writer
        async with writer.held if writer is not None else contextlib.nullcontext():
            anonymous = await writes.erase_customer(
                info.context.store, str(id), int(time.time() * 1000)
            )
            if anonymous is not None and writer is not None:
                writer.erased(str(id), anonymous)  # nor in an entry waiting to be written
        if anonymous is None:
            found = [Problem(field="id", message=f"no customer {str(id)!r}")]
            return failure(EraseCustomerError, ErrorCode.NOT_FOUND, found)
        audit_trail.erased(
            str(id), anonymous
        )  # the erased id is in no audit entry, this one included
        return EraseCustomerSuccess(erased_id=id, anonymous_id=strawberry.ID(anonymous))
