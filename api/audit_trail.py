"""Collecting a request's audit entry: which customers it read or wrote.

A `Customer` object is built for every customer an answer can show (`Customer.from_props`), and
mutations name the customers they write (`wrote`): both add the customer's id to the request's
`AuditTrail`, found through a context variable that `CrmSchema.execute` sets for the request
(DataLoader batches run in tasks that inherit it). After execution the entry is written in one
statement (`graph.audit.record`); entries older than `Settings.audit_days`
(`CRM_GRAPH_AUDIT_DAYS`, default 365) are pruned at most once an hour by the server.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from crm_graph.graph import audit
from crm_graph.graph.errors import StoreError
from crm_graph.graph.store import GraphStore

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0
DAY_MS = 86_400_000


@dataclass
class AuditTrail:
    """One request's customers, in the order first seen."""

    customers: dict[str, None] = field(default_factory=dict)

    def saw(self, customer_ids: Iterable[str]) -> None:
        for customer_id in customer_ids:
            self.customers[customer_id] = None


current: contextvars.ContextVar[AuditTrail | None] = contextvars.ContextVar(
    "crm_graph_audit", default=None
)


def saw(customer_id: str) -> None:
    """A customer was read (or written) by the current request."""
    trail = current.get()
    if trail is not None:
        trail.customers[customer_id] = None


def wrote(customer_ids: Iterable[str]) -> None:
    trail = current.get()
    if trail is not None:
        trail.saw(customer_ids)


def erased(customer_id: str, anonymous_id: str) -> None:
    """The current request erased a customer: its entry names the anonymous id instead."""
    trail = current.get()
    if trail is not None:
        trail.customers = {(anonymous_id if c == customer_id else c): None for c in trail.customers}
        trail.customers[anonymous_id] = None


async def flush(
    store: GraphStore, trail: AuditTrail, *, key_id: str, operation: str, request_id: str
) -> None:
    """Write the request's entry, when it touched customers: one statement."""
    if trail.customers:
        now = int(time.time() * 1000)
        entry = audit.AuditEntry(key_id, operation, list(trail.customers), now, request_id)
        await audit.record(store, [entry])


async def prune_expired(store: GraphStore, retention_days: float) -> int:
    """Delete the entries older than the retention; how many went."""
    return await audit.prune(store, int(time.time() * 1000) - int(retention_days * DAY_MS))


async def prune_every_hour(store: GraphStore, retention_days: float) -> None:
    """The server's pruning (`Settings.audit_days`): at start, then every hour, until cancelled."""
    while True:
        try:
            deleted = await prune_expired(store, retention_days)
            if deleted:
                log.info("audit: pruned %d entries older than %s days", deleted, retention_days)
        except StoreError as e:
            log.warning("audit: pruning failed, trying again in an hour: %s", e)
        await asyncio.sleep(PRUNE_EVERY_S)
