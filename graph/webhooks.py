"""Webhook subscriptions and their delivery state, as nodes: what `crm-graph webhooks` and the
admin GraphQL fields manage, and what the delivery worker (`crm_graph.api.webhooks`) reads and
advances.

    (:Webhook {id, url, events, secret, scopeSystems, scopeSegments, scopeIds, createdAt,
               acknowledged, status, failedAt, lastError, leaseOwner, leaseUntil})
    (:WebhookDelivery {id, webhookId, sequence, type, status, attempts, firstAttemptAt,
                       lastAttemptAt, lastStatus, lastError, deliveredAt})

`acknowledged` is the number of the last event the subscription's receiver acknowledged (or that
was not for it): the worker resumes after it, so a server killed mid-delivery sends that event
again (at least once) and loses none. A delivery's id is the subscription's id and the event's
number: the same across retries and replays of one event, so receivers can de-duplicate.

A subscription is worked on by one worker at a time: the one holding its lease (`claim`), which
it renews while it works; a `crm-graph webhooks run` beside a `crm-graph serve` takes over the
subscriptions whose lease the other let lapse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crm_graph.graph.access import CustomerScope, scope_of
from crm_graph.graph.store import GraphStore

ACTIVE = "active"
FAILED = "failed"
"""A subscription's status: delivering, or stopped on an event it could not deliver within the
retry window (`replay` starts it again)."""

DELIVERED = "delivered"
PENDING = "pending"
"""A delivery's status: `pending` (being retried), `delivered`, `failed`."""


@dataclass(frozen=True)
class Webhook:
    id: str
    url: str
    events: tuple[str, ...]
    secret: str
    scope: CustomerScope
    created_at: int
    acknowledged: int
    status: str
    failed_at: int | None = None
    last_error: str | None = None
    replays: int = 0
    """How many times it was replayed: progress is moved only by a worker that read the same
    number (a replay while it delivers is not overwritten by the deliveries it had under way)."""


@dataclass(frozen=True)
class Delivery:
    id: str
    webhook_id: str
    sequence: int
    type: str
    status: str
    attempts: int
    first_attempt_at: int | None
    last_attempt_at: int | None
    last_status: int | None
    last_error: str | None
    delivered_at: int | None


CREATE_WEBHOOK = """
CREATE (w:Webhook {id: $id, url: $url, events: $events, secret: $secret,
                   scopeSystems: $systems, scopeSegments: $segments, scopeIds: $ids,
                   createdAt: $now, acknowledged: $acknowledged, status: 'active'})
RETURN properties(w) AS webhook
"""

WEBHOOKS = (
    "MATCH (w:Webhook) RETURN properties(w) AS webhook ORDER BY webhook.createdAt, webhook.id"
)
WEBHOOK = "MATCH (w:Webhook {id: $id}) RETURN properties(w) AS webhook"

REMOVE_WEBHOOK = """
MATCH (w:Webhook {id: $id})
OPTIONAL MATCH (d:WebhookDelivery {webhookId: $id})
DETACH DELETE d
WITH DISTINCT w
DETACH DELETE w
RETURN count(*) AS removed
"""

REPLAY = """
MATCH (w:Webhook {id: $id})
SET w.acknowledged = $from - 1, w.status = 'active', w.failedAt = null, w.lastError = null,
    w.replays = coalesce(w.replays, 0) + 1
RETURN properties(w) AS webhook
"""

CLAIM = """
MATCH (w:Webhook {id: $id})
WHERE w.status = 'active'
  AND (w.leaseOwner IS NULL OR w.leaseOwner = $owner OR w.leaseUntil < $now)
SET w.leaseOwner = $owner, w.leaseUntil = $until
RETURN properties(w) AS webhook
"""

RELEASE = """
MATCH (w:Webhook {id: $id}) WHERE w.leaseOwner = $owner
SET w.leaseOwner = null, w.leaseUntil = null
"""

ACKNOWLEDGE = """
MATCH (w:Webhook {id: $id})
WHERE w.leaseOwner = $owner AND coalesce(w.replays, 0) = $replays AND w.acknowledged < $sequence
SET w.acknowledged = $sequence
RETURN w.acknowledged AS acknowledged
"""
"""Progress only by the lease holder, and only forwards."""

RECORD_ATTEMPT = """
MERGE (d:WebhookDelivery {id: $deliveryId})
ON CREATE SET d.webhookId = $webhookId, d.sequence = $sequence, d.type = $type, d.attempts = 0
SET d.firstAttemptAt = CASE WHEN d.status = 'pending' THEN d.firstAttemptAt ELSE $now END,
    d.attempts = CASE WHEN d.status = 'pending' THEN d.attempts ELSE 0 END + 1,
    d.lastAttemptAt = $now, d.lastStatus = $httpStatus,
    d.lastError = $error, d.status = $status,
    d.deliveredAt = CASE WHEN $status = 'delivered' THEN $now ELSE null END
WITH d
OPTIONAL MATCH (w:Webhook {id: $webhookId})
WHERE w.leaseOwner = $owner AND $status = 'delivered' AND w.acknowledged < $sequence
  AND coalesce(w.replays, 0) = $replays
SET w.acknowledged = $sequence
RETURN d.firstAttemptAt AS firstAttemptAt, d.attempts AS attempts, w IS NOT NULL AS advanced
"""
"""One attempt at a delivery, and for a delivered one the subscription's progress with it: one
statement, so an acknowledged event is never sent again after a restart, and a recorded
delivery is never missing from `deliveries`. The retry window starts again when a delivery
that had ended (delivered or failed) is attempted again (a replay), and its attempts are counted
afresh, so its backoff starts again from the first."""

MARK_FAILED = """
MATCH (w:Webhook {id: $id}) WHERE w.leaseOwner = $owner
SET w.status = 'failed', w.failedAt = $now, w.lastError = $error,
    w.leaseOwner = null, w.leaseUntil = null
"""

DELIVERIES = """
MATCH (d:WebhookDelivery {webhookId: $id})
WITH d ORDER BY d.sequence DESC LIMIT $limit
RETURN properties(d) AS delivery
ORDER BY delivery.sequence DESC
"""

DELIVERIES_FORWARDS = """
MATCH (d:WebhookDelivery {webhookId: $id})
WHERE $after IS NULL OR d.sequence < $after
WITH d ORDER BY d.sequence DESC LIMIT $take
RETURN properties(d) AS delivery
"""
DELIVERIES_BACKWARDS = """
MATCH (d:WebhookDelivery {webhookId: $id})
WHERE $before IS NULL OR d.sequence > $before
WITH d ORDER BY d.sequence ASC LIMIT $take
RETURN properties(d) AS delivery
"""
"""A page of a webhook's deliveries, newest first (a delivery per event: its sequence is its
place): the `$take` after the sequence `$after` (older), or the nearest `$take` before the
sequence `$before` (newer)."""
COUNT_DELIVERIES = "MATCH (d:WebhookDelivery {webhookId: $id}) RETURN count(d) AS total"

PRUNE_DELIVERIES = """
MATCH (d:WebhookDelivery) WHERE d.lastAttemptAt < $before AND d.status <> 'pending'
WITH d LIMIT $batch
DELETE d
RETURN count(*) AS deleted
"""


def webhook_of(props: dict[str, Any]) -> Webhook:
    return Webhook(
        id=props["id"],
        url=props["url"],
        events=tuple(props.get("events") or ()),
        secret=props["secret"],
        scope=scope_of(
            props.get("scopeSystems"), props.get("scopeSegments"), props.get("scopeIds")
        ),
        created_at=int(props["createdAt"]),
        acknowledged=int(props.get("acknowledged") or 0),
        status=props.get("status") or ACTIVE,
        failed_at=props.get("failedAt"),
        last_error=props.get("lastError"),
        replays=int(props.get("replays") or 0),
    )


def delivery_of(props: dict[str, Any]) -> Delivery:
    return Delivery(
        id=props["id"],
        webhook_id=props["webhookId"],
        sequence=int(props["sequence"]),
        type=props["type"],
        status=props["status"],
        attempts=int(props.get("attempts") or 0),
        first_attempt_at=props.get("firstAttemptAt"),
        last_attempt_at=props.get("lastAttemptAt"),
        last_status=props.get("lastStatus"),
        last_error=props.get("lastError"),
        delivered_at=props.get("deliveredAt"),
    )


def delivery_id(webhook_id: str, sequence: int) -> str:
    """The id of the delivery of event `sequence` to `webhook_id`: the same on every retry."""
    return f"{webhook_id}-{sequence}"


async def create(
    store: GraphStore,
    *,
    id: str,
    url: str,
    events: Sequence[str],
    secret: str,
    scope: CustomerScope,
    now_ms: int,
    acknowledged: int,
) -> Webhook:
    rows = await store.write(
        CREATE_WEBHOOK,
        {"id": id, "url": url, "events": list(events), "secret": secret,
         "systems": list(scope.systems), "segments": list(scope.segments),
         "ids": list(scope.ids), "now": now_ms, "acknowledged": acknowledged},
    )  # fmt: skip
    return webhook_of(rows[0]["webhook"])


async def all_webhooks(store: GraphStore) -> list[Webhook]:
    return [webhook_of(r["webhook"]) for r in await store.read(WEBHOOKS)]


async def webhook(store: GraphStore, webhook_id: str) -> Webhook | None:
    rows = await store.read(WEBHOOK, {"id": webhook_id})
    return webhook_of(rows[0]["webhook"]) if rows else None


async def remove(store: GraphStore, webhook_id: str) -> bool:
    rows = await store.write(REMOVE_WEBHOOK, {"id": webhook_id})
    return bool(rows and rows[0]["removed"])


async def replay(store: GraphStore, webhook_id: str, from_sequence: int) -> Webhook | None:
    """Deliver again from event `from_sequence` on (and start a failed subscription again)."""
    rows = await store.write(REPLAY, {"id": webhook_id, "from": from_sequence})
    return webhook_of(rows[0]["webhook"]) if rows else None


async def claim(
    store: GraphStore, webhook_id: str, owner: str, now_ms: int, lease_ms: int
) -> Webhook | None:
    """Take (or renew) the lease on an active subscription; None: another worker holds it, or
    it is not active (or gone). Serialised: two workers never both hold it."""
    rows = await store.write(
        store.dialect.serialized(CLAIM),
        {"id": webhook_id, "owner": owner, "now": now_ms, "until": now_ms + lease_ms},
    )
    return webhook_of(rows[0]["webhook"]) if rows else None


async def release(store: GraphStore, webhook_id: str, owner: str) -> None:
    await store.write(RELEASE, {"id": webhook_id, "owner": owner})


async def record_attempt(
    store: GraphStore,
    webhook: Webhook,
    owner: str,
    *,
    sequence: int,
    type: str,
    status: str,
    http_status: int | None,
    error: str | None,
    now_ms: int,
) -> tuple[int, int, bool]:
    """Record one attempt; returns when the first attempt was, the attempts so far, and whether
    the subscription's progress moved to this event (False for a delivered one: the lease was
    lost or the subscription replayed meanwhile, and the worker must read it again)."""
    rows = await store.write(
        RECORD_ATTEMPT,
        {"deliveryId": delivery_id(webhook.id, sequence), "webhookId": webhook.id,
         "sequence": sequence, "type": type, "status": status, "httpStatus": http_status,
         "error": error, "now": now_ms, "owner": owner, "replays": webhook.replays},
    )  # fmt: skip
    row = rows[0]
    return int(row["firstAttemptAt"]), int(row["attempts"]), bool(row["advanced"])


async def acknowledge(store: GraphStore, webhook: Webhook, owner: str, sequence: int) -> bool:
    """Move the subscription's progress past an event that was not for it (out of its scope);
    False: it did not move (lease lost, or replayed meanwhile)."""
    rows = await store.write(
        ACKNOWLEDGE,
        {"id": webhook.id, "owner": owner, "sequence": sequence, "replays": webhook.replays},
    )
    return bool(rows)


async def mark_failed(store: GraphStore, webhook_id: str, owner: str, now_ms: int,
                      error: str) -> None:  # fmt: skip
    await store.write(MARK_FAILED, {"id": webhook_id, "owner": owner, "now": now_ms,
                                    "error": error})  # fmt: skip


async def deliveries(store: GraphStore, webhook_id: str, limit: int = 50) -> list[Delivery]:
    rows = await store.read(DELIVERIES, {"id": webhook_id, "limit": limit})
    return [delivery_of(r["delivery"]) for r in rows]


async def deliveries_page(
    store: GraphStore, webhook_id: str, take: int, cursor: int | None, backwards: bool
) -> tuple[list[Delivery], int]:
    """Up to `take` deliveries of a webhook, newest first: those after the sequence `cursor`
    (older; from the newest without one), or `backwards` the nearest ones before it (newer; the
    oldest without one), listed newest first; and how many it has in all."""
    if backwards:
        rows = await store.read(DELIVERIES_BACKWARDS, {"id": webhook_id, "before": cursor,
                                                       "take": take})  # fmt: skip
        rows.reverse()
    else:
        rows = await store.read(DELIVERIES_FORWARDS, {"id": webhook_id, "after": cursor,
                                                      "take": take})  # fmt: skip
    counted = await store.read(COUNT_DELIVERIES, {"id": webhook_id})
    total = int(counted[0]["total"]) if counted else 0
    return [delivery_of(r["delivery"]) for r in rows], total


async def prune_deliveries(store: GraphStore, before_ms: int, batch: int = 5_000) -> int:
    deleted = 0
    while True:
        rows = await store.write(PRUNE_DELIVERIES, {"before": before_ms, "batch": batch})
        n = int(rows[0]["deleted"]) if rows else 0
        deleted += n
        if n < batch:
            return deleted
