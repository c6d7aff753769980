"""The webhooks' GraphQL fields, for administrators only (the `admin` scope, as `auditLog`):
`webhooks`, `webhookDeliveries`; `addWebhook`, `removeWebhook`, `replayWebhook`. Event types are
the catalogue's names as they travel on the wire (`customer.updated`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from crm_graph.api.customers.mutations import ErrorCode, MutationError, Problem, failure
from crm_graph.api.pagination import Connection, connection, page_request
from crm_graph.api.permissions import CanAdminister
from crm_graph.api.scalars import from_epoch_ms
from crm_graph.api.webhooks import subscriptions
from crm_graph.graph import webhooks
from crm_graph.graph.access import CustomerScope

DELIVERY_ORDERING = "WEBHOOK_DELIVERIES"
"""What a webhook's deliveries' cursors are made for: newest first, by event sequence."""


@strawberry.type(description="Which customers a webhook's events may concern (as an API key's).")
class WebhookCustomers:
    sources: list[str]
    segments: list[str]
    ids: list[strawberry.ID]


@strawberry.type(description="A subscription of a URL to change events (never its secret).")
class Webhook:
    id: strawberry.ID
    url: str
    events: list[str]
    customers: WebhookCustomers | None = strawberry.field(
        description="Null: events about every customer."
    )
    status: str = strawberry.field(description="`active`, or `failed` (replay to restart).")
    acknowledged_sequence: int = strawberry.field(
        description="The last event number delivered (or not for it): delivery resumes after."
    )
    created_at: datetime
    failed_at: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, hook: webhooks.Webhook) -> Webhook:
        scope = hook.scope
        return cls(
            id=strawberry.ID(hook.id),
            url=hook.url,
            events=list(hook.events),
            customers=None
            if scope.everyone
            else WebhookCustomers(
                sources=list(scope.systems),
                segments=list(scope.segments),
                ids=[strawberry.ID(i) for i in scope.ids],
            ),
            status=hook.status,
            acknowledged_sequence=hook.acknowledged,
            created_at=from_epoch_ms(hook.created_at) or datetime.min,
            failed_at=from_epoch_ms(hook.failed_at),
            last_error=hook.last_error,
        )


@strawberry.type(description="The delivery of one event to one webhook, over its attempts.")
class WebhookDelivery:
    id: strawberry.ID = strawberry.field(description="Its X-Crm-Graph-Delivery header.")
    sequence: int
    type: str
    status: str = strawberry.field(description="`pending`, `delivered` or `failed`.")
    attempts: int
    last_status: int | None = strawberry.field(description="The receiver's last HTTP status.")
    last_error: str | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None


@strawberry.input
class WebhookCustomersInput:
    sources: list[str] = strawberry.field(default_factory=list)
    segments: list[str] = strawberry.field(default_factory=list)
    ids: list[strawberry.ID] = strawberry.field(default_factory=list)


@strawberry.input
class AddWebhookInput:
    url: str
    events: list[str] = strawberry.field(description="Event types: `customer.updated`, ...")
    secret: str | None = strawberry.field(
        default=None, description="16+ characters; generated (and returned once) if absent."
    )
    customers: WebhookCustomersInput | None = strawberry.field(
        default=None, description="Only events about these customers (any of the limits)."
    )
    from_sequence: int | None = strawberry.field(
        default=None, description="The first event number to deliver (default: the next one)."
    )


@strawberry.type
class AddWebhookSuccess:
    webhook: Webhook
    secret: str | None = strawberry.field(
        description="The generated signing secret, shown only now (null when one was given)."
    )


@strawberry.type
class AddWebhookError(MutationError):
    pass


AddWebhookResult = Annotated[
    AddWebhookSuccess | AddWebhookError, strawberry.union("AddWebhookResult")
]


@strawberry.type
class ReplayWebhookSuccess:
    webhook: Webhook


@strawberry.type
class ReplayWebhookError(MutationError):
    pass


ReplayWebhookResult = Annotated[
    ReplayWebhookSuccess | ReplayWebhookError, strawberry.union("ReplayWebhookResult")
]

_INPUT_FIELDS = {"url": "input.url", "events": "input.events", "secret": "input.secret",
                 "customers": "input.customers", "from": "input.fromSequence"}  # fmt: skip


@strawberry.type
class WebhookQueries:
    @strawberry.field(
        description="Every webhook, oldest first.", permission_classes=[CanAdminister]
    )
    async def webhooks(self, info: Info) -> list[Webhook]:
        return [Webhook.of(h) for h in await webhooks.all_webhooks(info.context.store)]

    @strawberry.field(
        description="A webhook's deliveries, newest first (by event sequence), a page; empty "
        "for an unknown id.",
        permission_classes=[CanAdminister],
    )
    async def webhook_deliveries(
        self,
        info: Info,
        id: strawberry.ID,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[WebhookDelivery]:
        request = page_request("webhookDeliveries", DELIVERY_ORDERING, first, after, last, before)
        found, total = await webhooks.deliveries_page(
            info.context.store, str(id), request.size + 1,
            int(request.cursor[0]) if request.cursor is not None else None, request.backwards,
        )  # fmt: skip
        return connection(
            found, request, DELIVERY_ORDERING, lambda d: (d.sequence, d.id), _delivery, total
        )


def _delivery(d: webhooks.Delivery) -> WebhookDelivery:
    return WebhookDelivery(
        id=strawberry.ID(d.id), sequence=d.sequence, type=d.type, status=d.status,
        attempts=d.attempts, last_status=d.last_status, last_error=d.last_error,
        last_attempt_at=from_epoch_ms(d.last_attempt_at),
        delivered_at=from_epoch_ms(d.delivered_at),
    )  # fmt: skip


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description="Subscribe a URL to change events, delivered signed (HMAC-SHA256), at least "
        "once, in order.",
        permission_classes=[CanAdminister],
    )
    async def add_webhook(self, info: Info, input: AddWebhookInput) -> AddWebhookResult:
        limits = input.customers
        scope = (
            CustomerScope(
                systems=tuple(dict.fromkeys(limits.sources)),
                segments=tuple(dict.fromkeys(limits.segments)),
                ids=tuple(dict.fromkeys(str(i) for i in limits.ids)),
            )
            if limits is not None
            else CustomerScope()
        )
        try:
            added = await subscriptions.add(
                info.context.store, input.url, input.events, secret=input.secret, scope=scope,
                from_sequence=input.from_sequence,
            )  # fmt: skip
        except subscriptions.WebhookInputError as e:
            problem = Problem(field=_INPUT_FIELDS[e.field], message=str(e))
            return failure(AddWebhookError, ErrorCode.INVALID, [problem])
        return AddWebhookSuccess(
            webhook=Webhook.of(added.webhook),
            secret=added.webhook.secret if added.secret_generated else None,
        )

    @strawberry.mutation(
        description="Delete a webhook and its delivery records. False: no such webhook.",
        permission_classes=[CanAdminister],
    )
    async def remove_webhook(self, info: Info, id: strawberry.ID) -> bool:
        return await webhooks.remove(info.context.store, str(id))

    @strawberry.mutation(
        description="Deliver a webhook's events again from fromSequence on (restarting it if it "
        "failed).",
        permission_classes=[CanAdminister],
    )
    async def replay_webhook(
        self, info: Info, id: strawberry.ID, from_sequence: int
    ) -> ReplayWebhookResult:
        try:
            hook = await subscriptions.replay(info.context.store, str(id), from_sequence)
        except subscriptions.WebhookInputError as e:
            problem = Problem(field="fromSequence", message=str(e))
            return failure(ReplayWebhookError, ErrorCode.INVALID, [problem])
        except LookupError as e:
            problem = Problem(field="id", message=str(e))
            return failure(ReplayWebhookError, ErrorCode.NOT_FOUND, [problem])
        return ReplayWebhookSuccess(webhook=Webhook.of(hook))
