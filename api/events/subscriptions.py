"""The `Subscription` root: `customerChanged(ids)` and `events(types, fromSequence)`, over the
graphql-transport-ws protocol on /graphql (`api.app`).

What a key receives is what its queries may see:

- an event's type needs the scope that reads what it is about (`EVENT_SCOPES`): customer events
  `profile`, transactions `orders`, interactions `contacts`, ties `ties`, scores `scores`; a type
  not listed needs `admin` (closed by default);
- a key limited to some customers receives an event only when every customer it names is in the
  key's customer scope (an event naming none is not about its customers: not delivered);
- without `contact_details`, `email`, `phone` and `attributes` are left out of `data`, at any
  depth;
- `customerChanged` yields the customer as `customer(id:)` would answer that key, read afresh
  after each change (the loaders of the connection are renewed for each event).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from crm_graph.api.auth.principal import AuthError, Principal
from crm_graph.api.auth.scopes import Scope
from crm_graph.api.context import Context
from crm_graph.api.customers.loaders import CustomerLoaders
from crm_graph.api.customers.planner import customer_view
from crm_graph.api.customers.types import Customer
from crm_graph.api.events.hub import EventHub, SubscriberTooSlow, SubscriptionRefused
from crm_graph.api.events.types import ChangeEvent, EventType
from crm_graph.graph import events
from crm_graph.graph.events import Event

EVENT_SCOPES: Mapping[str, Scope] = {
    "customer": Scope.PROFILE,
    "transaction": Scope.ORDERS,
    "interaction": Scope.CONTACTS,
    "tie": Scope.TIES,
    "scores": Scope.SCORES,
}
"""The scope an event type needs, by the noun before its dot (`transaction.recorded`)."""

PERSONAL_KEYS = frozenset({"email", "phone", "attributes"})
"""What `data` leaves out for a key without `contact_details` (as `Customer` masks them)."""

MAX_IDS = 100
"""The most customers one `customerChanged` follows."""
RECHECK_SECONDS = 1.0
"""How stale a subscription's view of its key may be when it delivers an event: a key revoked
(or its scopes or customers changed) stops receiving within this, as the key cache's default
ttl lets an HTTP request through (api/auth/cache.py)."""


def scope_for(event_type: str) -> Scope:
    return EVENT_SCOPES.get(event_type.split(".", 1)[0], Scope.ADMIN)


def masked(value: Any, principal: Principal) -> Any:
    """`value` (an event's data) without the personal keys, unless the key sees them."""
    if principal.sees_personal_data:
        return value
    if isinstance(value, Mapping):
        return {k: masked(v, principal) for k, v in value.items() if k not in PERSONAL_KEYS}
    if isinstance(value, list | tuple):
        return [masked(v, principal) for v in value]
    return value


def _refused(code: str, message: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


def _subscriber(info: Info) -> tuple[Context, EventHub, Principal]:
    context: Context = info.context
    hub = context.events
    principal = context.principal
    if hub is None or principal is None:  # only the websocket endpoint has both
        raise _refused(
            "BAD_REQUEST",
            "subscriptions are served over the graphql-transport-ws protocol on /graphql",
        )
    try:
        hub.check(principal.key_id)
    except SubscriptionRefused as e:
        raise _refused(e.code, e.message) from None
    return context, hub, principal


async def _visible(context: Context, principal: Principal, batch: list[Event]) -> list[Event]:
    """The events of `batch` `principal` may receive (their type's scope, their customers'
    scope), in order: one store statement for the whole batch at most (`events.in_scope`)."""
    readable = [e for e in batch if scope_for(e.type) in principal.scopes]
    if not readable or principal.customers.everyone:
        return readable
    hub = context.events
    assert hub is not None
    async with hub.store_slots:
        seen = await events.in_scope(context.store, principal.customers, readable)
    return [e for e in readable if e.sequence in seen]


class _Key:
    """The subscription's key as it is now: looked up again at most every `RECHECK_SECONDS`
    before an event is delivered (its expiry checked before each one, without the store)."""

    def __init__(self, context: Context, principal: Principal) -> None:
        self.context = context
        self.principal = principal
        self.checked = time.monotonic()

    async def current(self) -> Principal:
        principal = self.principal
        if principal.expires_at is not None and principal.expires_at <= datetime.now(UTC):
            raise _refused("UNAUTHENTICATED", "this API key has expired")
        credential = self.context.credential
        if credential is None or time.monotonic() - self.checked < RECHECK_SECONDS:
            return principal
        hub = self.context.events
        assert hub is not None
        try:
            self.principal = await hub.key(self.context.store, credential, RECHECK_SECONDS)
        except AuthError as e:
            raise _refused(e.code, e.message) from None
        self.checked = time.monotonic()
        self.context.principal = self.principal  # what the customer's fields mask by
        return self.principal


async def _followed(
    hub: EventHub,
    context: Context,
    principal: Principal,
    from_sequence: int | None,
    wanted: Callable[[Event], bool],
) -> AsyncIterator[tuple[Principal, Event]]:
    """The events the subscription asks for (`wanted`: its types, the customers it follows;
    looked at first, without the store) that the key may see, in sequence order, with the key
    as it is when each is delivered; a subscription that fell behind, or whose key was revoked
    or expired meanwhile, is ended with an error saying so. The key's customer scope is checked
    for all the events waiting at once, so that a subscription costs the store at most one
    statement per batch of events it asks for, never one per event of the whole system."""
    key = _Key(context, principal)
    try:
        async with hub.subscription(context.store, principal.key_id, from_sequence) as feed:
            async for batch in feed.batches():
                # the key first (at most one look-up a second, shared by its subscriptions): a
                # revoked or expired key ends the subscription at its next event, wanted or not
                now = await key.current()
                pending = [e for e in batch if wanted(e)]
                while pending:
                    visible = await _visible(context, now, pending)
                    pending = []
                    for i, event in enumerate(visible):
                        if i and (current := await key.current()) != now:
                            # the key changed while the batch was delivered: check the rest
                            # against it as it is now
                            now, pending = current, visible[i:]
                            break
                        yield now, event
    except SubscriptionRefused as e:
        raise _refused(e.code, e.message) from None
    except SubscriberTooSlow as e:
        raise _refused("SUBSCRIBER_TOO_SLOW", str(e), resumeFrom=e.resume_from) from None


async def _events(
    hub: EventHub,
    context: Context,
    principal: Principal,
    types: frozenset[str] | None,
    from_sequence: int | None,
) -> AsyncGenerator[ChangeEvent, None]:
    def wanted(event: Event) -> bool:
        return types is None or event.type in types

    async for now, event in _followed(hub, context, principal, from_sequence, wanted):
        yield ChangeEvent.of(event, masked(event.data, now))


async def _customer_changes(
    hub: EventHub,
    context: Context,
    principal: Principal,
    ids: tuple[str, ...],
    from_sequence: int | None,
    info: Info,
) -> AsyncGenerator[Customer, None]:
    view = customer_view(info)
    followed = set(ids)

    def wanted(event: Event) -> bool:
        return not followed.isdisjoint(event.customer_ids)

    async for now, event in _followed(hub, context, principal, from_sequence, wanted):
        about = [c for c in dict.fromkeys(event.customer_ids) if c in followed]
        # read afresh: the connection's loaders would answer what they cached before the change
        context.loaders = CustomerLoaders(context.store, now.customers)
        context.extra.clear()
        loader = context.loaders.customer_view(view)
        for customer_id in about:
            async with hub.store_slots:
                rows = await loader.load(customer_id)
            if rows:  # erased, or outside the key's customer scope: nothing to show
                yield Customer.from_view_row(rows[0], view)


def _from(from_sequence: int | None) -> int | None:
    if from_sequence is not None and from_sequence < 0:
        raise _refused(
            "BAD_USER_INPUT",
            f"fromSequence: {from_sequence} is negative; give 0 to replay every event",
            field="fromSequence",
        )
    return from_sequence


def _ids(given: Iterable[strawberry.ID]) -> tuple[str, ...]:
    ids = tuple(dict.fromkeys(str(i) for i in given))
    if not ids:
        raise _refused("BAD_USER_INPUT", "ids: give at least one customer id", field="ids")
    if len(ids) > MAX_IDS:
        raise _refused(
            "BAD_USER_INPUT",
            f"ids: {len(ids)} customer ids, over the most of {MAX_IDS} per subscription",
            field="ids",
        )
    return ids


@strawberry.type
class EventSubscriptions:
    @strawberry.subscription(
        description="The customers given, each time a change about one of them commits "
        "(created, updated, merged, an order, an interaction, a tie, scores), as "
        "`customer(id:)` answers this key; an erased customer, or one outside the key's "
        "customer scope, is not yielded. At most 100 ids. With fromSequence, first once for "
        "each change after that sequence (the customer as it is now), then live."
    )
    async def customer_changed(
        self, info: Info, ids: list[strawberry.ID], from_sequence: int | None = None
    ) -> AsyncGenerator[Customer, None]:
        context, hub, principal = _subscriber(info)
        return _customer_changes(hub, context, principal, _ids(ids), _from(from_sequence), info)

    @strawberry.subscription(
        description="Committed changes from the outbox, in sequence order: from now on, or "
        "first every event after fromSequence (replayed), then live. Only the types given "
        "(all when null) that this key's scopes read, about customers in its scope."
    )
    async def events(
        self,
        info: Info,
        types: list[EventType] | None = None,  # type: ignore[valid-type]
        from_sequence: int | None = None,
    ) -> AsyncGenerator[ChangeEvent, None]:
        context, hub, principal = _subscriber(info)
        wanted = frozenset(str(cast(Any, t).value) for t in types) if types is not None else None
        return _events(hub, context, principal, wanted, _from(from_sequence))
