"""Root fields for administrators (the `admin` scope): the audit trail, and a customer's export
(GDPR access and portability). Mutation: replace a key's explicit list of customers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from crm_graph.api import audit_trail
from crm_graph.api.auth.keys import set_customer_ids
from crm_graph.api.errors import user_error
from crm_graph.api.pagination import Connection, connection, page_request
from crm_graph.api.permissions import CanAdminister
from crm_graph.api.scalars import from_epoch_ms, to_epoch_ms
from crm_graph.graph import audit, export
from crm_graph.graph.pages import KeysetPage

AUDIT_ORDERING = "AUDIT_LOG"
"""What the audit log's cursors are made for: newest first, by (at, entry id)."""


@strawberry.type(description="Who read or wrote which customers, when (ids only, never values).")
class AuditEntry:
    id: strawberry.ID = strawberry.field(
        description="The entry's own id (a request's entries share its requestId)."
    )
    key_id: str
    operation: str = strawberry.field(description="`query customer,path`, `mutation ...`.")
    customer_ids: list[strawberry.ID]
    at: datetime
    request_id: str


@strawberry.type
class AdminQueries:
    @strawberry.field(
        description="Audit entries, newest first, of one key and/or about one customer, in a "
        "time range (`from` inclusive, `to` exclusive); a page.",
        permission_classes=[CanAdminister],
    )
    async def audit_log(
        self,
        info: Info,
        customer_id: strawberry.ID | None = None,
        key_id: str | None = None,
        since: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        until: Annotated[datetime | None, strawberry.argument(name="to")] = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[AuditEntry]:
        request = page_request("auditLog", AUDIT_ORDERING, first, after, last, before)
        if info.context.audit_writer is not None:
            await info.context.audit_writer.flush()  # every request answered before this one
        found, total = await audit.page(
            info.context.store, KeysetPage(request.size, request.backwards, request.cursor),
            key_id=key_id, customer_id=str(customer_id) if customer_id is not None else None,
            since=to_epoch_ms(since), until=to_epoch_ms(until),
        )  # fmt: skip
        return connection(
            found, request, AUDIT_ORDERING, lambda e: (e.at, e.id), _audit_entry, total
        )

    @strawberry.field(
        description="Everything held about one customer as one JSON document (GDPR Articles "
        "15 and 20), or null if there is no such id.",
        permission_classes=[CanAdminister],
    )
    async def customer_export(self, info: Info, id: strawberry.ID) -> JSON | None:
        if info.context.audit_writer is not None:
            await info.context.audit_writer.flush()  # the export's audit entries are whole
        found = await export.customer_export(info.context.store, str(id))
        if found is None:
            return None
        audit_trail.wrote([str(id)])  # the export is a read of personal data
        return JSON(found)


def _audit_entry(e: audit.AuditEntry) -> AuditEntry:
    return AuditEntry(
        id=strawberry.ID(e.id),
        key_id=e.key_id,
        operation=e.operation,
        customer_ids=[strawberry.ID(c) for c in e.customers],
        at=from_epoch_ms(e.at) or datetime.min,
        request_id=e.request_id,
    )


@strawberry.type
class AdminMutations:
    @strawberry.mutation(
        description="Replace the explicit list of customers a key may see (its customer scope "
        "also takes its source systems and segments). False: no such key.",
        permission_classes=[CanAdminister],
    )
    async def set_key_customers(
        self, info: Info, key_id: str, customer_ids: list[strawberry.ID]
    ) -> bool:
        try:
            return await set_customer_ids(
                info.context.store, key_id, [str(i) for i in customer_ids]
            )
        except ValueError as e:
            raise user_error(str(e), field="setKeyCustomers.customerIds") from e
