"""Collecting a request's audit entry: which customers it read or wrote.

A `Customer` object is built for every customer an answer can show (`Customer.from_props`), and
mutations name the customers they write (`wrote`): both add the customer's id to the request's
`AuditTrail`, found through a context variable that `CrmSchema.execute` sets for the request
(DataLoader batches run in tasks that inherit it). Entries older than `Settings.audit_days`
(`CRM_GRAPH_AUDIT_DAYS`, default 365) are pruned at most once an hour by the server.

Writing the entry: a serving app (its lifespan ran) hands it to its `AuditWriter`, which writes
the entries of many requests in one statement (`graph.audit.record`), every
`CRM_GRAPH_AUDIT_FLUSH_SECONDS` (default 1 s) or as soon as `FLUSH_BATCH` wait, and at shutdown:
a read then costs no store round trip of its own (one per request before: see bench/api.py's
figures). A clean stop writes every entry; a crash (the process killed, the machine lost) loses
the entries of at most the last flush interval; a store that refuses the write keeps them
pending, written at the next flush. The audit log's readers (`auditLog`, `customerExport`) flush
first, so an administrator sees every request answered before theirs. An app whose lifespan did
not run (tests through `httpx.ASGITransport`), or `CRM_GRAPH_AUDIT_FLUSH_SECONDS=0`, writes
each request's entry in one statement after it, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
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
FLUSH_BATCH = 500
"""Entries written in one statement; a flush is started as soon as this many wait."""


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
    store: GraphStore,
    trail: AuditTrail,
    *,
    key_id: str,
    operation: str,
    request_id: str,
    writer: AuditWriter | None = None,
) -> None:
    """The request's entry, when it touched customers: handed to the server's `writer`, or
    without one written now in one statement."""
    if trail.customers:
        now = int(time.time() * 1000)
        entry = audit.AuditEntry(key_id, operation, list(trail.customers), now, request_id)
        if writer is not None and writer.running:
            writer.add(entry)
        else:
            await audit.record(store, [entry])


class AuditWriter:
    """The server's audit entries, buffered and written in batches (see the module's docstring):
    `start` in the app's lifespan, `add` per request, `close` at shutdown."""

    def __init__(self, store: GraphStore, every_s: float, batch: int = FLUSH_BATCH) -> None:
        if every_s <= 0 or batch < 1:
            raise ValueError("an AuditWriter flushes every positive interval, in batches of 1+")
        self.store = store
        self.every_s = every_s
        self.batch = batch
        self._pending: list[audit.AuditEntry] = []
        self._full = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.statements = 0
        """Statements written so far (for tests and the bench)."""

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._flush_regularly(), name="audit writer")

    def add(self, entry: audit.AuditEntry) -> None:
        self._pending.append(entry)
        if len(self._pending) >= self.batch:
            self._full.set()

    @property
    def held(self) -> asyncio.Lock:
        """Held, no flush runs: an erasure holds it while it anonymises the written entries and
        then the pending ones (`erased`), so no entry naming the customer is written between."""
        return self._lock

    def erased(self, customer_id: str, anonymous_id: str) -> None:
        """A customer was erased: the pending entries name the anonymous id instead, as
        `graph.audit.anonymise` does for the written ones (call it holding `held`)."""
        self._pending = [
            dataclasses.replace(e, customers=[anonymous_id if c == customer_id else c
                                              for c in e.customers])
            if customer_id in e.customers
            else e
            for e in self._pending
        ]  # fmt: skip

    async def flush(self) -> int:
        """Write every pending entry, `batch` a statement; how many were written. An entry
        whose statement failed stays pending, and the store's error is raised."""
        async with self._lock:
            written = 0
            while self._pending:
                chunk = self._pending[: self.batch]
                del self._pending[: len(chunk)]
                try:
                    await audit.record(self.store, chunk)
                except BaseException:
                    self._pending[:0] = chunk  # kept, in order, for the next flush
                    raise
                self.statements += 1
                written += len(chunk)
            self._full.clear()
            return written

    async def _flush_regularly(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self.every_s)
            try:
                await self.flush()
            except StoreError as e:
                log.warning("audit: %d entries not written yet, trying again: %s",
                            len(self._pending), e)  # fmt: skip
                await asyncio.sleep(self.every_s)

    async def close(self) -> None:
        """Stop flushing regularly and write what is pending. Entries the store refuses even
        then are logged whole (an error per entry), so the log keeps what the store did not."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except StoreError as e:
            for entry in self._pending:
                log.error("audit: entry not written at shutdown (%s): %s", e, entry)
            self._pending.clear()


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
