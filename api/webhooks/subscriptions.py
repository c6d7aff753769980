"""The changes `crm-graph webhooks` and the admin GraphQL fields make, checked once here: a URL
that can be posted to, known event types, a secret (made up when not given, shown once)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from crm_graph.api.webhooks.signing import new_secret
from crm_graph.graph import events, webhooks
from crm_graph.graph.access import MAX_SCOPE_IDS, CustomerScope
from crm_graph.graph.store import GraphStore

MIN_SECRET = 16
MAX_URL = 2048


class WebhookInputError(ValueError):
    """A subscription's input is wrong; the message says which part and why. `field`: the
    input that was wrong (`url`, `events`, `secret`, `customers`, `from`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Added:
    webhook: webhooks.Webhook
    secret_generated: bool


def check_url(url: str) -> str:
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookInputError("url", f"{url!r} is not an http:// or https:// URL with a host")
    if len(text) > MAX_URL:
        raise WebhookInputError("url", f"the URL is longer than {MAX_URL} characters")
    if parts.username or parts.password:
        raise WebhookInputError("url", "the URL must not hold credentials: use the secret")
    return text


def check_events(types: Sequence[str]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(t.strip() for t in types if t.strip()))
    if not wanted:
        raise WebhookInputError(
            "events", f"name at least one event type: {', '.join(events.EVENT_TYPES)}"
        )
    unknown = [t for t in wanted if t not in events.EVENT_TYPES]
    if unknown:
        raise WebhookInputError(
            "events",
            f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(events.EVENT_TYPES)}",
        )
    return wanted


async def add(
    store: GraphStore,
    url: str,
    types: Sequence[str],
    *,
    secret: str | None = None,
    scope: CustomerScope | None = None,
    from_sequence: int | None = None,
) -> Added:
    """Subscribe `url` to the events `types`. It receives the events written from now on (or
    from `from_sequence` on, when given, as far back as the outbox keeps them)."""
    checked_url = check_url(url)
    checked_types = check_events(types)
    if secret is not None and len(secret) < MIN_SECRET:
        raise WebhookInputError("secret", f"a secret has at least {MIN_SECRET} characters")
    scope = scope or CustomerScope()
    if len(scope.ids) > MAX_SCOPE_IDS:
        raise WebhookInputError("customers", f"at most {MAX_SCOPE_IDS:,} customer ids")
    if from_sequence is not None and from_sequence < 1:
        raise WebhookInputError("from", f"an event number is at least 1, not {from_sequence}")
    start = from_sequence - 1 if from_sequence is not None else await events.last_sequence(store)
    created = await webhooks.create(
        store,
        id=f"wh_{uuid.uuid4().hex[:16]}",
        url=checked_url,
        events=checked_types,
        secret=secret if secret is not None else new_secret(),
        scope=scope,
        now_ms=int(time.time() * 1000),
        acknowledged=start,
    )
    return Added(created, secret_generated=secret is None)


async def replay(store: GraphStore, webhook_id: str, from_sequence: int) -> webhooks.Webhook:
    """Deliver the subscription's events again from `from_sequence` on (starting a failed one
    again); raises `LookupError` for an unknown id."""
    if from_sequence < 1:
        raise WebhookInputError("from", f"an event number is at least 1, not {from_sequence}")
    found = await webhooks.replay(store, webhook_id, from_sequence)
    if found is None:
        raise LookupError(f"no webhook has the id {webhook_id!r} (see `crm-graph webhooks list`)")
    return found
