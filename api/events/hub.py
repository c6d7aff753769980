"""One poller per server reading the outbox, fanning its events out to every subscription.

A subscription never queries the store on a timer itself: the hub asks `events_after` once per
tick (`CRM_GRAPH_EVENT_POLL_SECONDS`, 0.25 s by default) for what was committed after the last
sequence it saw, and only while at least one subscription is open. Each subscription has a
bounded queue; one that falls more than `QUEUE_LIMIT` events behind is ended with
`SubscriberTooSlow`, naming the sequence to resubscribe from, instead of holding memory for a
client that does not read.

A subscription asking to replay (`from_sequence`) registers its queue first, then reads the
outbox itself from that sequence until it has caught up, then follows the queue: nothing
committed in between is missed, and what both paths bring is delivered once (by sequence).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from crm_graph.api.auth.keys import authenticate
from crm_graph.api.auth.principal import Principal
from crm_graph.graph import events
from crm_graph.graph.errors import StoreError
from crm_graph.graph.events import Event
from crm_graph.graph.store import GraphStore

log = logging.getLogger(__name__)

STORE_SLOTS = 4
"""Store statements the subscriptions' own checks (a key looked up again, a customer scope, a
customer read) run at once: an event reaches every subscription at the same moment, and a
hundred of them asking the store together exhausted the embedded store's connection pool
("Too many connections", bench subscriptions)."""
BATCH = 100
"""Events read from the outbox per statement (the poller reads again at once after a full one),
and the most a subscription is handed at once (`Feed.batches`)."""
QUEUE_LIMIT = 1_000
"""Events a subscription may have waiting; beyond, it is ended (`SubscriberTooSlow`)."""


class SubscriptionRefused(Exception):
    """A subscription cannot start: `code` and a message that are safe to show the caller."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SubscriberTooSlow(Exception):
    """A subscription fell `QUEUE_LIMIT` events behind; `resume_from` is the last sequence it
    was given, to resubscribe with `fromSequence`."""

    def __init__(self, resume_from: int, limit: int = QUEUE_LIMIT) -> None:
        super().__init__(
            f"this subscription fell more than {limit} events behind and was ended; "
            f"subscribe again with fromSequence: {resume_from}"
        )
        self.resume_from = resume_from


class Feed:
    """A subscription's events: one at a time (`async for`), or as many as are waiting at once,
    in batches (`batches()`: for checks that cost a statement per batch, not per event). One
    or the other, for the life of the subscription."""

    def __init__(self, read: Callable[[int], AsyncIterator[list[Event]]]) -> None:
        self._read = read
        self._one_by_one: AsyncIterator[list[Event]] | None = None
        self._batched = False
        self._pending: list[Event] = []

    def __aiter__(self) -> Feed:
        return self

    async def __anext__(self) -> Event:
        if self._batched:
            raise RuntimeError("this feed is read in batches")
        if self._one_by_one is None:
            self._one_by_one = self._read(1)
        # replayed batches hold more than one: handed out one at a time
        while not self._pending:
            self._pending = list(await anext(self._one_by_one))
        return self._pending.pop(0)

    def batches(self) -> AsyncIterator[list[Event]]:
        if self._one_by_one is not None or self._batched:
            raise RuntimeError("a feed is read by event or in batches, once")
        self._batched = True
        return self._read(BATCH)


@dataclass(eq=False)
class _Subscriber:
    key_id: str
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    overflowed: bool = False


class EventHub:
    """The outbox's events, read by one task, handed to every open subscription.

    `per_key`: the most subscriptions one API key may have open at once (over all its
    connections); `interval`: seconds between two reads of the outbox."""

    def __init__(self, *, interval: float, per_key: int, queue_limit: int = QUEUE_LIMIT) -> None:
        self.interval = interval
        self.per_key = per_key
        self.queue_limit = queue_limit
        self._subscribers: set[_Subscriber] = set()
        self._store: GraphStore | None = None
        self._task: asyncio.Task[None] | None = None
        self._position: int | None = None
        self._started = asyncio.Event()
        self.store_slots = asyncio.Semaphore(STORE_SLOTS)
        """Taken around each store statement a subscription makes on its own (`STORE_SLOTS`)."""
        self._keys: dict[str, tuple[float, asyncio.Future[Principal]]] = {}
        self.polls = 0
        """Reads of the outbox so far (the tests check it does not grow with subscribers)."""

    @property
    def open(self) -> int:
        """Subscriptions open now."""
        return len(self._subscribers)

    def open_for(self, key_id: str) -> int:
        return sum(1 for s in self._subscribers if s.key_id == key_id)

    @property
    def following(self) -> bool:
        """Whether the poller knows where the outbox is (a subscription registered from then on
        receives every event committed after it registered)."""
        return self.running and self._started.is_set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def check(self, key_id: str) -> None:
        """Raise `SubscriptionRefused` when `key_id` may not open one more subscription."""
        if self.open_for(key_id) >= self.per_key:
            raise SubscriptionRefused(
                "TOO_MANY_SUBSCRIPTIONS",
                f"this key has {self.per_key} subscriptions open, the most allowed "
                "(CRM_GRAPH_SUBSCRIPTIONS_PER_KEY): complete one before starting another",
            )

    @contextlib.asynccontextmanager
    async def subscription(
        self, store: GraphStore, key_id: str, from_sequence: int | None = None
    ) -> AsyncIterator[Feed]:
        """The events committed after `from_sequence` (None: from now on), in sequence order,
        each once, for as long as the context is open."""
        self.check(key_id)
        subscriber = _Subscriber(key_id)
        await self._ensure_running(store)
        if not self._subscribers:
            # the poller reads nothing while no one listens: catch up with the outbox first, or
            # this subscription would be given what committed before it
            last = await events.last_sequence(store)
            assert self._position is not None
            self._position = max(self._position, last)
        self.check(key_id)
        # registered and started where the poller is, with no suspension in between: what
        # commits later reaches its queue, what committed before does not
        self._subscribers.add(subscriber)
        assert self._position is not None
        try:
            live_from = self._position
            yield Feed(lambda most: self._feed(store, subscriber, live_from, from_sequence, most))
        finally:
            self._subscribers.discard(subscriber)

    async def _feed(
        self,
        store: GraphStore,
        subscriber: _Subscriber,
        live_from: int,
        from_sequence: int | None,
        most: int,
    ) -> AsyncIterator[list[Event]]:
        """The events in batches: each replayed page, then what waits in the queue, at most
        `most` at a time (taken out of the queue only when handed over: what counts against
        `queue_limit` is what the subscription has not taken yet)."""
        seen = live_from if from_sequence is None else from_sequence
        if from_sequence is not None:
            # replay: read the outbox until it has nothing after `seen` (the queue, registered
            # before, holds whatever is committed meanwhile; duplicates are skipped below)
            while True:
                page = await events.read_after(store, seen, limit=BATCH)
                batch = [e for e in page.events if e.sequence > seen]
                seen = max([seen, page.reached, *(e.sequence for e in batch)])
                if batch:
                    yield batch
                if page.caught_up:
                    break
        while True:
            # what is waiting, at most BATCH, without waiting for more than the first
            waiting = [await subscriber.queue.get()]
            while len(waiting) < most and waiting[-1] is not None and not subscriber.queue.empty():
                waiting.append(subscriber.queue.get_nowait())
            batch = []
            for live in waiting:
                if live is not None and live.sequence > seen:
                    seen = live.sequence
                    batch.append(live)
            if batch:
                yield batch
            if waiting[-1] is None:
                raise SubscriberTooSlow(seen, self.queue_limit)

    async def _ensure_running(self, store: GraphStore) -> None:
        if self._store is not None and self._store is not store:
            raise RuntimeError("an EventHub serves one store")
        if not self.running:
            self._store = store
            self._started = asyncio.Event()
            self._task = asyncio.create_task(self._poll(store), name="crm-graph event hub")
        await self._started.wait()

    async def _poll(self, store: GraphStore) -> None:
        while self._position is None:
            try:
                self._position = await events.last_sequence(store)
            except StoreError as e:
                log.warning("event hub cannot read the outbox: %s", e)
                await asyncio.sleep(self.interval)
        self._started.set()
        while True:
            await asyncio.sleep(self.interval)
            if not self._subscribers:
                continue
            try:
                await self.poll_once()
            except StoreError as e:  # the next tick tries again from the same position
                log.warning("event hub cannot read the outbox: %s", e)
            except Exception:  # never let every subscription starve for one bad read
                log.exception("event hub: reading the outbox failed; trying again next tick")

    async def poll_once(self) -> None:
        """Read what the outbox holds after the last event seen and hand it to every open
        subscription (what the poller does each tick): one `read_after` per `BATCH` events,
        whatever the number of subscriptions."""
        if self._store is None or self._position is None:
            return
        while True:
            self.polls += 1
            page = await events.read_after(self._store, self._position, limit=BATCH)
            for event in page.events:
                for subscriber in tuple(self._subscribers):
                    self._hand(subscriber, event)
            self._position = max(self._position, page.reached)
            if page.caught_up:
                return

    def _hand(self, subscriber: _Subscriber, event: Event) -> None:
        if subscriber.overflowed:
            return
        if subscriber.queue.qsize() >= self.queue_limit:
            subscriber.overflowed = True
            subscriber.queue.put_nowait(None)
            return
        subscriber.queue.put_nowait(event)

    async def key(self, store: GraphStore, credential: str, fresh_for: float) -> Principal:
        """The principal of `credential` (`Bearer <key>`) as the store says now, looked up at
        most once every `fresh_for` seconds for all the subscriptions holding it; `AuthError`
        when it is revoked, expired or unknown."""
        now = time.monotonic()
        found = self._keys.get(credential)
        if found is not None and now - found[0] < fresh_for:
            return await asyncio.shield(found[1])
        looked_up: asyncio.Future[Principal] = asyncio.get_running_loop().create_future()
        self._keys[credential] = (now, looked_up)
        try:
            async with self.store_slots:
                principal = await authenticate(store, credential)
        except BaseException as e:
            self._keys.pop(credential, None)
            looked_up.set_exception(e)
            looked_up.exception()  # retrieved: waiters re-raise it, no "never retrieved"
            raise
        looked_up.set_result(principal)
        if len(self._keys) > 10_000:  # keys of connections long gone
            self._keys = {c: f for c, f in self._keys.items() if now - f[0] < fresh_for}
        return principal

    async def close(self) -> None:
        """Stop polling (the app's shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
