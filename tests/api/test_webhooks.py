"""The webhook worker against a real receiver on 127.0.0.1, on both engines: every event of a
subscription's types delivered once acknowledged, in order, signed; failures, time-outs and a
receiver that was down retried until it answers; a subscription that cannot deliver within its
window fails and is replayable; a scoped one never gets an event about a customer outside it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from crm_graph.api.webhooks import signing, subscriptions
from crm_graph.api.webhooks.worker import DeliveryConfig, WebhookWorker
from crm_graph.graph import events, webhooks
from crm_graph.graph.access import CustomerScope
from crm_graph.graph.store import GraphStore
from tests.api import scoped_changes
from tests.api.test_mutations import LINK, RECORD_TRANSACTION, UPSERT
from tests.conftest import Api
from tests.receiver import Receiver, until

FAST = DeliveryConfig(timeout=0.5, retry_base=0.02, retry_max=0.1, give_up=60.0, poll=0.05,
                      lease=3.0)  # fmt: skip
"""Small waits: the tests poll with deadlines, never sleep a fixed time."""


@contextlib.asynccontextmanager
async def worker(store: GraphStore, config: DeliveryConfig = FAST) -> AsyncIterator[WebhookWorker]:
    running = WebhookWorker(store, config)
    task = asyncio.create_task(running.run())
    try:
        yield running
    finally:
        await running.stop()
        await asyncio.wait_for(task, 10)


def verify_like_the_readme(secret: str, raw_body: bytes, header: str) -> bool:
    """The documented Python recipe, written out as a receiver would (not the product's code)."""
    expected = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


async def write_some(admin: Api) -> None:
    await admin.data(UPSERT, input=[{"id": "w1", "name": "Wyn"}, {"id": "w2", "name": "Xu"}])
    await admin.data(UPSERT, input=[{"id": "w1", "city": "Hull"}])
    order = {"id": "ow1", "customerId": "w2", "at": "2024-05-01T10:00:00Z",
             "lines": [{"productId": "p1", "quantity": 1, "unitPrice": 5}]}  # fmt: skip
    await admin.data(RECORD_TRANSACTION, input=order)
    await admin.data(LINK, input={"sourceId": "w1", "targetId": "w2"})


async def test_every_event_of_its_types_arrives_once_in_order_signed(
    shop: None, store: GraphStore, admin: Api
) -> None:
    async with Receiver() as receiver, worker(store):
        # given a subscription to customer and order events, made now
        added = await subscriptions.add(
            store, receiver.url, ["customer.created", "customer.updated", "transaction.recorded"]
        )
        hook = added.webhook
        assert added.secret_generated and hook.secret.startswith("whsec_")
        start = hook.acknowledged
        # when customers and an order are written (and a tie, which it did not ask for)
        await write_some(admin)
        wanted = [
            e
            for e in await events.events_after(store, start)
            if e.type in ("customer.created", "customer.updated", "transaction.recorded")
        ]
        assert len(wanted) == 4
        # then each arrives, in order, once
        await until(lambda: len(receiver.accepted()) >= len(wanted))
        got = receiver.accepted()
        assert [r.json["sequence"] for r in got] == [e.sequence for e in wanted]
        assert [r.json["type"] for r in got] == [e.type for e in wanted]
        assert [r.json["data"] for r in got] == [e.data for e in wanted]
        for r, e in zip(got, wanted, strict=True):
            assert r.headers["x-crm-graph-event"] == e.type
            assert r.headers["x-crm-graph-delivery"] == r.json["id"] == f"{hook.id}-{e.sequence}"
            assert verify_like_the_readme(hook.secret, r.body, r.headers["x-crm-graph-signature"])
            assert not verify_like_the_readme("another secret", r.body,
                                              r.headers["x-crm-graph-signature"])  # fmt: skip
            assert abs(r.json["timestamp"] - e.at_ms / 1000) < 60
        # and its progress is stored: the last event it acknowledged
        await until(lambda: _acknowledged(store, hook.id, wanted[-1].sequence))
        done = await webhooks.deliveries(store, hook.id)
        assert [(d.sequence, d.status, d.attempts, d.last_status) for d in done] == [
            (e.sequence, "delivered", 1, 200) for e in reversed(wanted)
        ]
        # and a replay of an active subscription sends them again, same ids, in order
        await subscriptions.replay(store, hook.id, wanted[1].sequence)
        await until(lambda: len(receiver.accepted()) >= len(wanted) * 2 - 1)
        again = receiver.accepted()[len(wanted) :]
        assert [r.json["sequence"] for r in again] == [e.sequence for e in wanted[1:]]
        assert [r.json["id"] for r in again] == [r.json["id"] for r in got[1:]]


async def _acknowledged(store: GraphStore, hook_id: str, sequence: int) -> bool:
    found = await webhooks.webhook(store, hook_id)
    return found is not None and found.acknowledged >= sequence


async def test_failures_time_outs_and_a_receiver_down_for_a_while_lose_nothing(
    shop: None, store: GraphStore, admin: Api
) -> None:
    # given a receiver that fails its first answers (500, then one too slow to wait for)
    calls = 0

    def flaky(_: object) -> int:
        nonlocal calls
        calls += 1
        return 500 if calls <= 3 else 200

    receiver = Receiver(answer=flaky)
    await receiver.start()
    hook = (await subscriptions.add(store, receiver.url, list(events.EVENT_TYPES))).webhook
    try:
        async with worker(store):
            await write_some(admin)
            written = await events.events_after(store, hook.acknowledged)
            assert len(written) == 5
            await until(lambda: len(receiver.accepted()) >= 2)
            # when the receiver goes down for a while, as events keep being written
            await receiver.stop()
            await admin.data(UPSERT, input=[{"id": "w3", "name": "Zo"}])
            await until(lambda: _attempts_failed_with(store, hook.id, "Connect"))
            # and comes back slow: longer than the worker waits, once
            receiver.delay = 1.0
            await receiver.start()
            await until(lambda: _attempts_failed_with(store, hook.id, "Timeout"))
            receiver.delay = 0.0
            expected = [e.sequence for e in await events.events_after(store, hook.acknowledged)]
            assert len(expected) == 6
            # then every event arrives, in order (the first acceptance of each); a repeat only
            # of one whose answer the worker did not get
            await until(lambda: {r.json["sequence"] for r in receiver.accepted()} >= set(expected))
            accepted = [r.json["sequence"] for r in receiver.accepted()]
            assert list(dict.fromkeys(accepted)) == expected
            # a delivery sent again has the same delivery id each time: receivers can tell
            ids = [(r.json["sequence"], r.headers["x-crm-graph-delivery"])
                   for r in receiver.received]  # fmt: skip
            assert len(set(ids)) == len({s for s, _ in ids}) == len(expected)
    finally:
        await receiver.stop()


async def _attempts_failed_with(store: GraphStore, hook_id: str, error: str) -> bool:
    return any(error in (d.last_error or "") for d in await webhooks.deliveries(store, hook_id))


async def test_a_subscription_that_cannot_deliver_fails_and_is_replayable(
    shop: None, store: GraphStore, admin: Api
) -> None:
    async with Receiver(status=503) as receiver:
        hook = (await subscriptions.add(store, receiver.url, ["customer.created"])).webhook
        await admin.data(UPSERT, input=[{"id": "f1"}, {"id": "f2"}])
        first, second = await events.events_after(store, hook.acknowledged)
        # when it keeps failing past its window
        async with worker(store, DeliveryConfig(**{**FAST.__dict__, "give_up": 0.3})):
            failed = await until(lambda: _status(store, hook.id, "failed"), timeout=30)
            assert failed.acknowledged == hook.acknowledged  # nothing acknowledged
            assert f"event {first.sequence} undelivered" in (failed.last_error or "")
            (record,) = await webhooks.deliveries(store, hook.id)
            assert record.status == "failed" and record.attempts >= 2
            assert record.last_status == 503
            tries = len(receiver.received)
            # then the worker stops trying, and never skips ahead to the next event
            await asyncio.sleep(0.3)
            assert len(receiver.received) == tries
            assert {r.json["sequence"] for r in receiver.received} == {first.sequence}
            # when the receiver is fixed and the subscription replayed from the failed event
            receiver.status = 200
            await subscriptions.replay(store, hook.id, first.sequence)
            await until(lambda: len(receiver.accepted()) >= 2)
        assert [r.json["sequence"] for r in receiver.accepted()] == [first.sequence,
                                                                      second.sequence]  # fmt: skip
        # the replayed delivery counts its attempts afresh (its backoff starts again from 1)
        replayed = {d.sequence: d for d in await webhooks.deliveries(store, hook.id)}
        assert replayed[first.sequence].status == "delivered"
        assert replayed[first.sequence].attempts == 1
        assert (await webhooks.webhook(store, hook.id)).status == "active"  # type: ignore[union-attr]
    with pytest.raises(LookupError):
        await subscriptions.replay(store, "wh_nobody", 1)


async def _status(store: GraphStore, hook_id: str, status: str) -> webhooks.Webhook | None:
    found = await webhooks.webhook(store, hook_id)
    return found if found is not None and found.status == status else None


async def test_a_scoped_subscription_never_gets_an_event_about_a_customer_outside_it(
    shop: None, store: GraphStore, admin: Api
) -> None:
    async with Receiver() as scoped, Receiver() as everyone, worker(store):
        # given a partner's subscription limited to w1 (and the shop's c00), and one to all
        scope = CustomerScope(ids=("w1", "c00"))
        partner = (await subscriptions.add(store, scoped.url, list(events.EVENT_TYPES),
                                           scope=scope)).webhook  # fmt: skip
        await subscriptions.add(store, everyone.url, list(events.EVENT_TYPES))
        # when w1, w2, an order of w2's and a tie between them are written, and scores
        await write_some(admin)
        await events.record(store, events.SCORES_WRITTEN, [], version="v", customers=2)
        written = await events.events_after(store, partner.acknowledged)
        await until(lambda: len(everyone.accepted()) >= len(written))
        await until(lambda: _acknowledged(store, partner.id, written[-1].sequence))
        # then the partner got only the events about w1 alone
        got = [r.json for r in scoped.accepted()]
        assert [(g["type"], g["data"].get("customerId")) for g in got] == [
            ("customer.created", "w1"),
            ("customer.updated", "w1"),
        ]
        assert "w2" not in repr([r.body for r in scoped.received])


async def test_bad_subscriptions_are_refused_with_what_was_wrong(store: GraphStore) -> None:
    cases = [
        ("ftp://example.org/x", ["customer.created"], None, "url"),
        ("http://user:pw@example.org/x", ["customer.created"], None, "url"),
        ("http://example.org/x", ["customer.deleted"], None, "events"),
        ("http://example.org/x", [" "], None, "events"),
        ("http://example.org/x", ["customer.created"], "short", "secret"),
    ]
    for url, types, secret, field in cases:
        with pytest.raises(subscriptions.WebhookInputError) as refused:
            await subscriptions.add(store, url, types, secret=secret)
        assert refused.value.field == field
    assert await webhooks.all_webhooks(store) == []


def test_the_signature_is_hmac_sha256_of_the_raw_body() -> None:
    raw = b'{"id":"wh_1-1","sequence":1}'
    header = signing.signature("s3cret-s3cret-s3cret", raw)
    assert header == "sha256=" + hmac.new(b"s3cret-s3cret-s3cret", raw, "sha256").hexdigest()
    assert signing.verify("s3cret-s3cret-s3cret", raw, header)
    assert not signing.verify("s3cret-s3cret-s3cret", raw + b" ", header)


ADD_WEBHOOK = """
mutation($input: AddWebhookInput!) {
  addWebhook(input: $input) {
    __typename
    ... on AddWebhookSuccess {
      secret webhook { id url events status acknowledgedSequence customers { ids sources } }
    }
    ... on AddWebhookError { code field message }
  }
}
"""


async def test_admins_manage_webhooks_through_graphql(
    shop: None, store: GraphStore, admin: Api
) -> None:
    # an admin adds one (its secret generated and returned once) and one with a secret given
    made = (await admin.data(ADD_WEBHOOK, input={
        "url": "http://127.0.0.1:9/hook", "events": ["customer.updated"],
        "customers": {"ids": ["c01"]},
    }))["addWebhook"]  # fmt: skip
    assert made["__typename"] == "AddWebhookSuccess" and made["secret"].startswith("whsec_")
    hook = made["webhook"]
    assert hook["customers"] == {"ids": ["c01"], "sources": []}
    assert hook["acknowledgedSequence"] == await events.last_sequence(store)
    given = (await admin.data(ADD_WEBHOOK, input={
        "url": "https://partner.example/hook", "events": ["tie.recorded"],
        "secret": "a-secret-of-enough-length",
    }))["addWebhook"]  # fmt: skip
    assert given["secret"] is None and given["webhook"]["customers"] is None
    listed = (await admin.data("{ webhooks { id url events status } }"))["webhooks"]
    assert [w["id"] for w in listed] == [hook["id"], given["webhook"]["id"]]
    assert "whsec_" not in repr(listed)
    # bad input is a typed error naming the field
    bad = await admin.data(ADD_WEBHOOK, input={"url": "http://x.org", "events": ["nope"]})
    assert bad["addWebhook"]["code"] == "INVALID"
    assert bad["addWebhook"]["field"] == "input.events"
    # replay, deliveries, remove
    replay = """mutation($id: ID!, $from: Int!) { replayWebhook(id: $id, fromSequence: $from) {
        __typename ... on ReplayWebhookSuccess { webhook { acknowledgedSequence } }
        ... on ReplayWebhookError { code field } } }"""
    done = (await admin.data(replay, id=hook["id"], **{"from": 2}))["replayWebhook"]
    assert done["webhook"]["acknowledgedSequence"] == 1
    missing = (await admin.data(replay, id="wh_nobody", **{"from": 2}))["replayWebhook"]
    assert missing == {"__typename": "ReplayWebhookError", "code": "NOT_FOUND", "field": "id"}
    deliveries = "query($id: ID!) { webhookDeliveries(id: $id) { totalCount nodes { id } } }"
    listed = (await admin.data(deliveries, id=hook["id"]))["webhookDeliveries"]
    assert listed == {"totalCount": 0, "nodes": []}
    remove = "mutation($id: ID!) { removeWebhook(id: $id) }"
    assert (await admin.data(remove, id=hook["id"]))["removeWebhook"] is True
    assert (await admin.data(remove, id=hook["id"]))["removeWebhook"] is False
    assert len(await webhooks.all_webhooks(store)) == 1


class _CountingStore:
    """The real store, counting the statements the worker sends it, by what they do."""

    def __init__(self, store: GraphStore) -> None:
        self._store = store
        self.sent: list[str] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def _count(self, query: str) -> None:
        kinds = {events.EVENTS_AFTER: "events", webhooks.RECORD_ATTEMPT: "record"}
        self.sent.append(kinds.get(query, "claim" if "leaseUntil = $until" in query else "other"))

    async def read(self, query: str, params: dict[str, object] | None = None) -> list[dict]:
        self._count(query)
        return await self._store.read(query, params)  # type: ignore[arg-type]

    async def write(self, query: str, params: dict[str, object] | None = None) -> list[dict]:
        self._count(query)
        return await self._store.write(query, params)  # type: ignore[arg-type]


async def test_a_delivery_costs_one_store_write_not_a_read_and_a_claim_per_subscription(
    store: GraphStore,
) -> None:
    # given 4 subscriptions to every event and a worker counting what it asks of the store
    # (a lease long enough that it is renewed once, at the start)
    config = DeliveryConfig(timeout=5.0, retry_base=0.02, retry_max=0.1, poll=0.05, lease=600.0)
    counting = _CountingStore(store)
    async with Receiver() as receiver:
        for _ in range(4):
            await subscriptions.add(store, receiver.url, list(events.EVENT_TYPES))
        async with worker(counting, config):  # type: ignore[arg-type]
            # when 8 events are written one at a time, each delivered to all before the next
            for n in range(8):
                await events.record(store, events.SCORES_WRITTEN, [], version=f"v{n}")
                await until(lambda n=n: len(receiver.accepted()) >= 4 * (n + 1))
        # then each delivery was one statement (its record and the progress), the events were
        # read once for all four, and each lease taken once: not a claim and a read of the
        # outbox by each subscription for each event
    assert len(receiver.accepted()) == 32
    sent = Counter(counting.sent)
    assert sent["record"] == 32, sent
    assert sent["events"] <= 8 + 4, sent
    assert sent["claim"] <= 4 + 4, sent


def _about(delivered: dict[str, Any]) -> tuple[str, list[str]]:
    """A delivery's type and the customers its data names (as the event's customerIds)."""
    data = delivered["data"]
    if delivered["type"] == events.CUSTOMER_MERGED:
        return delivered["type"], [data["keptId"], *data["mergedIds"]]
    return delivered["type"], [data["customerId"]]


async def test_source_and_segment_subscriptions_get_the_erasures_and_merges_of_their_customers(
    store: GraphStore, admin: Api
) -> None:
    # given customers of the shop and of the crm, some in the VIP segment
    async def mutate(query: str, **variables: Any) -> None:
        (result,) = (await admin.data(query, **variables)).values()
        assert result["__typename"].endswith("Success"), result

    await scoped_changes.customers(store, mutate)
    receivers = {scope: Receiver() for scope in scoped_changes.EXPECTED}
    async with contextlib.AsyncExitStack() as stack:
        hooks = {}
        for scope, receiver in receivers.items():
            await stack.enter_async_context(receiver)
            added = await subscriptions.add(store, receiver.url, scoped_changes.TYPES, scope=scope)
            hooks[scope] = added.webhook
        await stack.enter_async_context(worker(store))
        # when customers in and out of each scope are erased and merged, then z1 is updated
        await scoped_changes.changes(mutate)
        last = await events.last_sequence(store)
        for hook in hooks.values():
            await until(lambda hook=hook: _acknowledged(store, hook.id, last))
        # then each subscription got the erasure and the merge of its own customers, and
        # nothing about the others
        for scope, expected in scoped_changes.EXPECTED.items():
            got = [_about(r.json) for r in receivers[scope].accepted()]
            assert got == expected, scope


async def test_a_subscription_to_some_types_moves_past_the_events_of_others(
    store: GraphStore,
) -> None:
    # given a subscription to erasures only, and then 3,500 events of other types
    receiver = Receiver()
    async with receiver, worker(store):
        hook = (await subscriptions.add(store, receiver.url, [events.CUSTOMER_ERASED])).webhook
        start = await events.last_sequence(store)
        await store.write(
            "UNWIND range($a, $b) AS i CREATE (:Event {sequence: i, type: 'customer.updated', "
            "at: timestamp(), customerIds: ['c1'], data: '{}'})",
            {"a": start + 1, "b": start + 3_500},
        )
        await store.write(
            "MERGE (s:EventSequence {id: 'events'}) SET s.value = $n", {"n": start + 3_500}
        )
        # then its progress moves past them (window by window), instead of staying where it
        # was and reading all of them again at every poll; nothing was delivered
        await until(lambda: _acknowledged(store, hook.id, start + 3_500))
        assert receiver.received == []
