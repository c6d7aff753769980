"""The delivery worker: one asyncio task per subscription, each sending its events one at a time
in sequence order, with its own HTTP client and timeouts, so a slow or dead receiver delays no
one else, and never the API (the worker only reads the outbox the writes leave).

Per subscription: take its lease, read the events after its acknowledged number, for each one
in its scope POST it until the receiver answers 2xx (retrying with exponential backoff and full
jitter), record the attempt and move the acknowledged number in the same statement, then the
next. An event undelivered `give_up` seconds after its first attempt fails the subscription
(stopped; `crm-graph webhooks replay` starts it again). A killed worker sends the event it was
on again when it starts: at least once, never one lost, and the delivery id lets receivers tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from crm_graph.api.settings import Settings
from crm_graph.api.webhooks import signing
from crm_graph.graph import events, webhooks
from crm_graph.graph.errors import StoreError
from crm_graph.graph.store import GraphStore

log = logging.getLogger(__name__)

BATCH = 100
WINDOW = 1000
"""How many of the newest events the worker keeps read for all its subscriptions."""
LEASE_SECONDS = 30.0
PRUNE_EVERY = 3600.0
MAX_ERROR = 300


@dataclass(frozen=True)
class DeliveryConfig:
    timeout: float = 10.0
    retry_base: float = 1.0
    retry_max: float = 3600.0
    give_up: float = 86400.0
    poll: float = 0.5
    retention_days: int = 30
    lease: float = LEASE_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryConfig:
        return cls(
            timeout=settings.webhook_timeout,
            retry_base=settings.webhook_retry_base,
            retry_max=settings.webhook_retry_max,
            give_up=settings.webhook_give_up,
            poll=settings.webhook_poll,
            retention_days=settings.event_retention_days,
            lease=settings.webhook_lease,
        )

    def backoff(self, attempts: int, draw: Callable[[float, float], float]) -> float:
        """The wait before the next attempt after `attempts` failed ones: full jitter."""
        ceiling = min(self.retry_max, self.retry_base * 2 ** min(attempts - 1, 62))
        return draw(0.0, ceiling)


class _LeaseLost(Exception):
    """The subscription was removed or stopped meanwhile, or another worker took it over."""


def _now_ms() -> int:
    return int(time.time() * 1000)


class WebhookWorker:
    """Delivers every subscription's events until `stop` (or cancellation)."""

    def __init__(
        self,
        store: GraphStore,
        config: DeliveryConfig,
        *,
        owner: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.owner = owner or f"worker-{uuid.uuid4().hex[:12]}"
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(config.timeout),
            follow_redirects=False,
            trust_env=False,
            transport=transport,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._latest = 0
        self._window: list[events.Event] = []
        self._window_after = 0
        """The events numbered after `_window_after`, read once for every subscription (`_read`):
        all of them up to the last one's number."""
        self._changed = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._random = random.Random()

    # -- the main loop: which subscriptions, how far the outbox goes -----------------------------

    async def run(self) -> None:
        last_prune = 0.0
        try:
            while not self._stopping.is_set():
                try:
                    await self._look()
                    if time.monotonic() - last_prune > PRUNE_EVERY:
                        last_prune = time.monotonic()
                        await self._prune()
                except (StoreError, OSError) as e:
                    log.warning("webhooks: the store did not answer (%s); trying again", e)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.config.poll)
        finally:
            await self._shut_down()

    async def stop(self) -> None:
        self._stopping.set()

    async def _look(self) -> None:
        latest = await events.last_sequence(self.store)
        if latest != self._latest:
            await self._read_window(latest)
            async with self._changed:
                self._latest = latest
                self._changed.notify_all()
        for hook in await webhooks.all_webhooks(self.store):
            task = self._tasks.get(hook.id)
            if hook.status == webhooks.ACTIVE and (task is None or task.done()):
                self._tasks[hook.id] = asyncio.create_task(
                    self._subscription(hook.id), name=f"webhook {hook.id}"
                )

    async def _read_window(self, latest: int) -> None:
        """Read the outbox's newest events once for all the subscriptions, instead of once by
        each: the window keeps the last `WINDOW` events, and goes as far as it could read."""
        end = self._window[-1].sequence if self._window else self._window_after
        if latest < end or latest - end > WINDOW:  # pruned and renumbered, or too far behind
            self._window, self._window_after = [], max(0, latest - BATCH)
            end = self._window_after
        while end < latest:
            more = await events.events_after(self.store, end, limit=BATCH)
            if not more:
                break
            self._window.extend(more)
            end = more[-1].sequence
        if len(self._window) > WINDOW:
            dropped = self._window[: len(self._window) - WINDOW]
            self._window = self._window[len(dropped) :]
            self._window_after = dropped[-1].sequence

    async def _read(self, hook: webhooks.Webhook) -> events.Page:
        """The subscription's next events (of its types, after its acknowledged number, at most
        `BATCH`), and how far they were looked for: from the window when it covers them, else
        from the store (`events.read_after`: a bounded window of sequences)."""
        after = hook.acknowledged
        window = self._window
        if window and self._window_after <= after and window[-1].sequence >= self._latest:
            wanted = set(hook.events)
            found = [e for e in window if e.sequence > after and e.type in wanted][:BATCH]
            end = window[-1].sequence
            reached = found[-1].sequence if len(found) == BATCH else end
            return events.Page(found, reached, max(end, self._latest))
        return await events.read_after(self.store, after, types=hook.events, limit=BATCH)

    async def _prune(self) -> None:
        before = _now_ms() - self.config.retention_days * 86_400_000
        pruned = await events.prune(self.store, before)
        pruned_deliveries = await webhooks.prune_deliveries(self.store, before)
        if pruned or pruned_deliveries:
            log.info("webhooks: pruned %d events, %d delivery records older than %d days",
                     pruned, pruned_deliveries, self.config.retention_days)  # fmt: skip

    async def _shut_down(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for hook_id, task in list(self._tasks.items()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            with contextlib.suppress(Exception):
                await webhooks.release(self.store, hook_id, self.owner)
        await self._client.aclose()

    # -- one subscription ------------------------------------------------------------------------

    async def _claim(self, hook_id: str) -> webhooks.Webhook | None:
        lease_ms = int(self.config.lease * 1000)
        return await webhooks.claim(self.store, hook_id, self.owner, _now_ms(), lease_ms)

    async def _subscription(self, hook_id: str) -> None:
        """Deliver one subscription's events. The lease is renewed (one write, which also reads
        the subscription afresh) when a third of it has gone, not before each event: between
        renewals the progress is followed here, and a delivery or acknowledgement that could not
        move it (replayed, removed, or the lease lost meanwhile) makes it read afresh at once."""
        checked = -1
        hook: webhooks.Webhook | None = None
        claimed = 0.0
        try:
            while not self._stopping.is_set():
                if hook is None or time.monotonic() - claimed > self.config.lease / 3:
                    hook = await self._claim(hook_id)
                    if hook is None:
                        return  # removed, failed, or another worker has it: looked at again later
                    claimed = time.monotonic()
                checked = max(checked, hook.acknowledged)
                page = await self._read(hook)
                batch = page.events
                if not batch and page.reached > hook.acknowledged:
                    # only events of other types there: past them, instead of reading them again
                    if not await webhooks.acknowledge(self.store, hook, self.owner, page.reached):
                        hook = None  # replayed meanwhile (or the lease lost): read it again
                        continue
                    hook = dataclasses.replace(hook, acknowledged=page.reached)
                    continue
                if not batch:
                    # nothing for it after its acknowledged number: wait for the outbox to grow
                    checked = max(checked, page.last)
                    await self._wait_for_more(checked)
                    continue
                for_it = await events.in_scope(self.store, hook.scope, batch)
                for event in batch:
                    if self._stopping.is_set():
                        return
                    if event.sequence not in for_it:
                        moved = await webhooks.acknowledge(
                            self.store, hook, self.owner, event.sequence
                        )
                    else:
                        delivered = await self._deliver(hook, event)
                        if delivered is None:
                            return  # failed: stopped until replayed
                        moved = delivered
                    if not moved:
                        hook = None  # replayed meanwhile (or the lease lost): read it again
                        break
                    hook = dataclasses.replace(hook, acknowledged=event.sequence)
                    if time.monotonic() - claimed > self.config.lease / 3:
                        break  # renew the lease (the batch is read again from its progress)
        except _LeaseLost:
            return
        except (StoreError, OSError) as e:
            log.warning("webhooks: %s: the store did not answer (%s); resuming later", hook_id, e)
        except Exception:  # a bug must not end the worker: the subscription resumes later
            log.exception("webhooks: %s: delivery loop failed; resuming later", hook_id)

    async def _wait_for_more(self, checked: int) -> None:
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                more = self._changed.wait_for(
                    lambda: self._latest > checked or self._stopping.is_set()
                )
                await asyncio.wait_for(more, self.config.lease / 3)

    async def _deliver(self, hook: webhooks.Webhook, event: events.Event) -> bool | None:
        """POST the event until the receiver acknowledges it (True; False when the progress
        could not be moved: replayed meanwhile, or the lease lost) or its retry window closes
        (None, the subscription marked failed)."""
        delivery = webhooks.delivery_id(hook.id, event.sequence)
        while True:
            raw = signing.body(event, delivery, int(time.time()))
            http_status: int | None = None
            error: str | None = None
            try:
                sent = signing.headers(event, delivery, hook.secret, raw)
                response = await self._client.post(hook.url, content=raw, headers=sent)
                http_status = response.status_code
                if not 200 <= http_status < 300:
                    error = f"HTTP {http_status}"
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"[:MAX_ERROR] or type(e).__name__
            ok = error is None
            status = webhooks.DELIVERED if ok else webhooks.PENDING
            first, attempts, advanced = await webhooks.record_attempt(
                self.store, hook, self.owner, sequence=event.sequence, type=event.type,
                status=status, http_status=http_status, error=error, now_ms=_now_ms(),
            )  # fmt: skip
            if ok:
                return advanced
            if _now_ms() - first >= self.config.give_up * 1000:
                await webhooks.record_attempt(
                    self.store, hook, self.owner, sequence=event.sequence, type=event.type,
                    status=webhooks.FAILED, http_status=http_status,
                    error=f"gave up after {attempts} attempts: {error}", now_ms=_now_ms(),
                )  # fmt: skip
                await webhooks.mark_failed(
                    self.store, hook.id, self.owner, _now_ms(),
                    f"event {event.sequence} undelivered after {attempts} attempts: {error}",
                )  # fmt: skip
                log.warning("webhooks: %s failed on event %d (%s)", hook.id, event.sequence, error)
                return None
            wait = self.config.backoff(attempts, self._random.uniform)
            await self._sleep_holding_lease(hook.id, wait)

    async def _sleep_holding_lease(self, hook_id: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), min(left, self.config.lease / 3))
            if self._stopping.is_set() or await self._claim(hook_id) is None:
                raise _LeaseLost(hook_id)
