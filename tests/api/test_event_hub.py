"""The server's one outbox poller (`api.events.hub.EventHub`) on both engines: one read of the
outbox per tick whatever the number of subscriptions, each subscription given every event once
and in order, a replay joined to the live events without a gap or a double, a subscription that
falls behind ended with where to resume."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from crm_graph.api.events.hub import EventHub, SubscriberTooSlow, SubscriptionRefused
from crm_graph.graph import events
from crm_graph.graph.events import Event
from crm_graph.graph.store import GraphStore

IDLE = 3600.0
"""A poll interval the tests never reach: they drive the poller with `poll_once`."""


async def take(feed: AsyncIterator[Event], count: int) -> list[int]:
    return [(await asyncio.wait_for(anext(feed), 30)).sequence for _ in range(count)]


async def test_one_read_of_the_outbox_serves_every_subscription(store: GraphStore) -> None:
    # given twenty subscriptions open on one hub
    hub = EventHub(interval=IDLE, per_key=100)
    async with contextlib.AsyncExitStack() as stack:
        feeds = [
            await stack.enter_async_context(hub.subscription(store, f"key{i % 4}"))
            for i in range(20)
        ]
        start = await events.last_sequence(store)
        # when five changes commit and the poller reads once
        for n in range(5):
            await events.record(store, "customer.updated", [f"c{n}"], customerId=f"c{n}")
        polls = hub.polls
        await hub.poll_once()
        # then that was one statement, and every subscription has the five, in order
        assert hub.polls == polls + 1
        expected = list(range(start + 1, start + 6))
        for feed in feeds:
            assert await take(feed, 5) == expected
    assert hub.open == 0
    await hub.close()


async def test_a_replay_joins_the_live_events_without_a_gap_or_a_double(
    store: GraphStore,
) -> None:
    hub = EventHub(interval=IDLE, per_key=10)
    start = await events.last_sequence(store)
    for _ in range(3):
        await events.record(store, "customer.updated", ["c1"], customerId="c1")
    async with hub.subscription(store, "key", from_sequence=start) as feed:
        # two more commit after it registered, before its replay read the outbox: both paths
        # bring them (the replay and the poller's queue)
        for _ in range(2):
            await events.record(store, "customer.updated", ["c1"], customerId="c1")
        await hub.poll_once()
        assert await take(feed, 5) == list(range(start + 1, start + 6))
        await events.record(store, "customer.updated", ["c1"], customerId="c1")
        await hub.poll_once()
        assert await take(feed, 1) == [start + 6]
    await hub.close()


async def test_a_subscription_that_falls_behind_is_ended_with_where_to_resume(
    store: GraphStore,
) -> None:
    hub = EventHub(interval=IDLE, per_key=10, queue_limit=3)
    async with hub.subscription(store, "key") as feed:
        start = await events.last_sequence(store)
        for _ in range(2):
            await events.record(store, "customer.updated", ["c1"], customerId="c1")
        await hub.poll_once()
        assert await take(feed, 1) == [start + 1]
        for _ in range(4):
            await events.record(store, "customer.updated", ["c1"], customerId="c1")
        await hub.poll_once()
        # what was queued before the overflow is delivered, then the end
        assert await take(feed, 3) == [start + 2, start + 3, start + 4]
        with pytest.raises(SubscriberTooSlow) as ended:
            await take(feed, 1)
    assert ended.value.resume_from == start + 4
    assert "fromSequence: " + str(start + 4) in str(ended.value)
    await hub.close()


async def test_a_subscription_after_an_idle_while_starts_from_now(store: GraphStore) -> None:
    # given a hub whose only subscription has ended
    hub = EventHub(interval=IDLE, per_key=10)
    async with hub.subscription(store, "key"):
        pass
    start = await events.last_sequence(store)
    # when changes commit while no one listens (the poller reads nothing then)
    for _ in range(2):
        await events.record(store, "customer.updated", ["c1"], customerId="c1")
    # then a new subscription is given only what commits after it
    async with hub.subscription(store, "key") as feed:
        await events.record(store, "customer.updated", ["c1"], customerId="c1")
        await hub.poll_once()
        assert await take(feed, 1) == [start + 3]
    await hub.close()


async def test_a_key_has_at_most_its_subscriptions(store: GraphStore) -> None:
    hub = EventHub(interval=IDLE, per_key=2)
    async with hub.subscription(store, "key"), hub.subscription(store, "key"):
        with pytest.raises(SubscriptionRefused) as refused:
            async with hub.subscription(store, "key"):
                pass
        async with hub.subscription(store, "other"):
            assert hub.open == 3
    assert refused.value.code == "TOO_MANY_SUBSCRIPTIONS"
    assert hub.open == 0
    await hub.close()
    assert not hub.running
