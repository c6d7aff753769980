"""What a delivery looks like on the wire, and its signature.

A delivery is an HTTP POST of a JSON body `{"id", "sequence", "type", "timestamp", "data"}`
with the headers `X-Crm-Graph-Event` (the type), `X-Crm-Graph-Delivery` (the id: the same on
every retry of one event to one subscription) and `X-Crm-Graph-Signature: sha256=<hex>`, the
HMAC-SHA256 of the raw body with the subscription's secret. `timestamp` (epoch seconds, when
sent) is inside the signed body: a receiver refuses a body older than a few minutes, so a
captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

from crm_graph.graph.events import Event

SIGNATURE_HEADER = "X-Crm-Graph-Signature"
EVENT_HEADER = "X-Crm-Graph-Event"
DELIVERY_HEADER = "X-Crm-Graph-Delivery"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A signing secret: 32 random bytes, URL-safe text."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def body(event: Event, delivery_id: str, timestamp: int) -> bytes:
    """The delivery's raw body (compact JSON, UTF-8)."""
    document: dict[str, Any] = {
        "id": delivery_id,
        "sequence": event.sequence,
        "type": event.type,
        "timestamp": timestamp,
        "data": event.data,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signature(secret: str, raw_body: bytes) -> str:
    """The `X-Crm-Graph-Signature` header's value for `raw_body`."""
    digest = hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, raw_body: bytes, header: str) -> bool:
    """Whether `header` signs `raw_body` with `secret` (constant-time): the receivers' recipe."""
    return hmac.compare_digest(signature(secret, raw_body), header)


def headers(event: Event, delivery_id: str, secret: str, raw_body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "crm-graph-webhooks",
        EVENT_HEADER: event.type,
        DELIVERY_HEADER: delivery_id,
        SIGNATURE_HEADER: signature(secret, raw_body),
    }
