"""GraphQL subscriptions over graphql-transport-ws: the real app served by a real uvicorn in the
test's event loop (so that its store is the `store` fixture, on both engines), a real websocket
client (`tests.ws_client`), changes made by mutations over HTTP from another client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from crm_graph.api.app import create_app
from crm_graph.api.auth.keys import create_key, revoke_key
from crm_graph.api.auth.scopes import PRESETS, Scope
from crm_graph.api.settings import Settings
from crm_graph.graph.access import scope_of
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore
from tests.api import scoped_changes
from tests.api.test_mutations import LINK, RECORD_TRANSACTION, UPSERT
from tests.ws_client import Refused, Subscriber, subscriber, uvicorn_serving

EVENTS = (
    "subscription($from: Int) { events(fromSequence: $from) { sequence type customerIds data at } }"
)
CHANGED = "subscription($ids: [ID!]!) { customerChanged(ids: $ids) { id name city email } }"


@dataclass
class Served:
    url: str
    app: Starlette
    http: httpx.AsyncClient
    admin: str

    async def write(self, query: str, **variables: Any) -> dict[str, Any]:
        """A mutation by the admin key over HTTP: its data (it must succeed)."""
        answer = await self.http.post(
            "/graphql", json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.admin}"},
        )  # fmt: skip
        body = answer.json()
        assert answer.status_code == 200 and "errors" not in body, body
        (result,) = body["data"].values()
        assert result["__typename"].endswith("Success"), result
        return body["data"]  # type: ignore[no-any-return]

    async def customers(self, *ids: str, **fields: Any) -> None:
        await self.write(UPSERT, input=[{"id": i, "name": f"Name {i}", **fields} for i in ids])

    @property
    def open_subscriptions(self) -> int:
        return self.app.state.events.open  # type: ignore[no-any-return]

    async def registered(self, count: int) -> None:
        """Wait until `count` subscriptions are open and the poller follows the outbox: what
        commits afterwards reaches them (no sleeping for a guessed while)."""
        hub = self.app.state.events
        for _ in range(600):
            if hub.open >= count and hub.following:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{hub.open} subscriptions open, {count} expected")


@pytest.fixture
async def served(store: GraphStore, request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    """The app on `store` with the settings of the test's `settings` marker, if any."""
    marker = request.node.get_closest_marker("settings")
    settings = Settings(store=StoreSettings(), event_poll_seconds=0.05,
                        **(marker.kwargs if marker else {}))  # fmt: skip
    app = create_app(settings, store=store, rate_limiter=None, points_limiter=None,
                     failed_auth_limiter=None, key_cache=None)  # fmt: skip
    _, admin = await create_key(store, "admin", "ops")
    async with uvicorn_serving(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        yield Served(url, app, http, admin)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def live(served: Served, client: Subscriber, query: str, **variables: Any) -> str:
    """A subscription started and registered with the server's poller: a change committed after
    this returns is delivered."""
    before = served.open_subscriptions
    operation = await client.subscribe(query, variables or None)
    await served.registered(before + 1)
    return operation


# -- authentication --------------------------------------------------------------------------


async def test_a_connection_without_a_valid_key_is_refused_with_4403_and_why(
    served: Served, store: GraphStore
) -> None:
    # no payload, an empty one, a malformed key, an unknown one
    for payload, why in [
        (None, "no API key"),
        ({}, "no API key"),
        ({"apiKey": "nope"}, "malformed API key"),
        (bearer("crm_AAAAAAAAAAAA_" + "A" * 43), ""),
    ]:
        with pytest.raises(Refused) as refused:
            async with subscriber(served.url, payload):
                pass
        assert refused.value.code == 4403, payload
        assert why in refused.value.reason
    # a revoked key, an expired one
    gone, revoked = await create_key(store, "analyst", "gone")
    await revoke_key(store, gone.id)
    _, expired = await create_key(
        store, "analyst", "old", expires_at=datetime.now(UTC) + timedelta(seconds=1)
    )
    await asyncio.sleep(1.2)
    for key in (revoked, expired):
        with pytest.raises(Refused) as refused:
            async with subscriber(served.url, {"apiKey": key}):
                pass
        assert refused.value.code == 4403
        assert "revoked" in refused.value.reason or "expired" in refused.value.reason
    # the key in the handshake's header, or in the payload either way, is accepted
    async with subscriber(served.url, None, headers={"Authorization": f"Bearer {served.admin}"}):
        pass
    async with subscriber(served.url, bearer(served.admin)):
        pass
    async with subscriber(served.url, {"apiKey": served.admin}):
        pass


async def test_a_subscribe_before_connection_init_is_closed_4401(served: Served) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    from tests.ws_client import PROTOCOL, ws_url

    async with connect(ws_url(served.url), subprotocols=[PROTOCOL]) as ws:
        await ws.send('{"id": "1", "type": "subscribe", "payload": {"query": "subscription '
                      '{ events { sequence } }"}}')  # fmt: skip
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


@pytest.mark.settings(cors_origins=("https://app.example.com",))
async def test_a_browser_page_on_an_origin_not_allowed_cannot_connect(served: Served) -> None:
    with pytest.raises(Refused) as refused:
        async with subscriber(served.url, bearer(served.admin), origin="https://evil.example"):
            pass
    assert "403" in refused.value.reason
    async with subscriber(served.url, bearer(served.admin), origin="https://app.example.com"):
        pass


# -- what is delivered -------------------------------------------------------------------------


async def test_changes_made_by_another_client_arrive_in_order(shop: None, served: Served) -> None:
    async with subscriber(served.url, bearer(served.admin)) as client:
        events = await live(served, client, EVENTS)
        await served.customers("c1")
        await served.customers("c2")
        await served.write(
            RECORD_TRANSACTION,
            input={"id": "t1", "customerId": "c1", "at": "2024-05-01T10:00:00Z",
                   "lines": [{"productId": "p1", "quantity": 2, "unitPrice": 5.25}]},
        )  # fmt: skip
        await served.write(LINK, input={"sourceId": "c1", "targetId": "c2", "type": "KNOWS"})
        got = [(await client.next(events))["data"]["events"] for _ in range(4)]
    assert [(e["type"], e["customerIds"]) for e in got] == [
        ("CUSTOMER_CREATED", ["c1"]),
        ("CUSTOMER_CREATED", ["c2"]),
        ("TRANSACTION_RECORDED", ["c1"]),
        ("TIE_RECORDED", ["c1", "c2"]),
    ]
    sequences = [e["sequence"] for e in got]
    assert sequences == list(range(sequences[0], sequences[0] + 4))
    assert got[2]["data"]["transactionId"] == "t1"
    assert datetime.fromisoformat(got[0]["at"]) > datetime(2020, 1, 1, tzinfo=UTC)


async def test_a_replay_from_a_sequence_then_follows_live_and_types_filter(
    served: Served,
) -> None:
    await served.customers("c1")
    await served.customers("c1", city="Leeds")
    await served.customers("c2")
    async with subscriber(served.url, bearer(served.admin)) as client:
        everything = await client.subscribe(EVENTS, {"from": 0})
        replayed = [(await client.next(everything))["data"]["events"] for _ in range(3)]
        first = replayed[0]["sequence"]
        # from the second: the two after it; only updates: the one
        after = await client.subscribe(EVENTS, {"from": first})
        updates = await client.subscribe(
            "subscription { events(types: [CUSTOMER_UPDATED], fromSequence: 0) { sequence type } }"
        )
        tail = [(await client.next(after))["data"]["events"]["sequence"] for _ in range(2)]
        only = (await client.next(updates))["data"]["events"]
        # then the live one follows on every subscription, nothing twice
        await served.customers("c2", city="York")
        live_all = (await client.next(everything))["data"]["events"]
        live_after = (await client.next(after))["data"]["events"]
        live_update = (await client.next(updates))["data"]["events"]
    assert [e["type"] for e in replayed] == ["CUSTOMER_CREATED", "CUSTOMER_UPDATED",
                                             "CUSTOMER_CREATED"]  # fmt: skip
    assert tail == [first + 1, first + 2]
    assert only == {"sequence": first + 1, "type": "CUSTOMER_UPDATED"}
    assert live_all["sequence"] == live_after["sequence"] == live_update["sequence"] == first + 3


async def test_customer_changed_yields_the_customer_read_afresh(served: Served) -> None:
    await served.customers("c1", "c2", "c3")
    async with subscriber(served.url, bearer(served.admin)) as client:
        changed = await live(served, client, CHANGED, ids=["c1", "c3"])

        async def change(*ids: str, city: str) -> dict[str, Any]:
            """Each change, then what it yields: read afresh when delivered, so the next change
            waits (c1 changed twice at once could yield Hull twice, correctly)."""
            for customer in ids:
                await served.customers(customer, city=city)
            return (await client.next(changed))["data"]["customerChanged"]

        got = [await change("c1", city="Leeds")]
        await served.customers("c2", city="York")  # not followed
        got.append(await change("c3", city="Bath"))
        got.append(await change("c1", city="Hull"))
    assert [(c["id"], c["city"]) for c in got] == [("c1", "Leeds"), ("c3", "Bath"),
                                                   ("c1", "Hull")]  # fmt: skip


# -- scopes ----------------------------------------------------------------------------------


async def test_a_partner_never_receives_an_event_outside_its_scope(
    shop: None, served: Served, store: GraphStore
) -> None:
    await served.customers("c1", "c2", email="someone@x.org")
    acme, partner = await create_key(store, "partner", "acme", customers=scope_of(ids=["c1"]))
    _, no_orders = await create_key(store, "partner", "profiles only",
                                    scopes=frozenset({Scope.PROFILE}))  # fmt: skip
    async with (
        subscriber(served.url, bearer(partner)) as client,
        subscriber(served.url, bearer(no_orders)) as other,
    ):
        events = await live(served, client, EVENTS)
        changed = await live(served, client, CHANGED, ids=["c1", "c2"])
        profiles = await live(served, other, EVENTS)
        await served.customers("c2", city="York")  # outside the partner's scope
        await served.write(LINK, input={"sourceId": "c1", "targetId": "c2", "type": "KNOWS"})
        await served.write(
            RECORD_TRANSACTION,
            input={"id": "t2", "customerId": "c2", "at": "2024-05-01T10:00:00Z",
                   "lines": [{"productId": "p1", "quantity": 1, "unitPrice": 3}]},
        )  # fmt: skip
        await served.customers("c1", city="Leeds", email="new@x.org")  # inside
        await served.write(
            RECORD_TRANSACTION,
            input={"id": "t1", "customerId": "c1", "at": "2024-05-01T10:00:00Z",
                   "lines": [{"productId": "p1", "quantity": 1, "unitPrice": 3}]},
        )  # fmt: skip
        # the first event the partner gets is its customer's update: nothing before it
        update = (await client.next(events))["data"]["events"]
        order = (await client.next(events))["data"]["events"]
        customer = (await client.next(changed))["data"]["customerChanged"]
        again = (await client.next(changed))["data"]["customerChanged"]
        # the key without orders or ties sees the customer events of all, never orders or ties
        seen = [(await other.next(profiles))["data"]["events"] for _ in range(2)]
        assert client.pending(events) == client.pending(changed) == 0
    assert (update["type"], update["customerIds"]) == ("CUSTOMER_UPDATED", ["c1"])
    assert (order["type"], order["customerIds"]) == ("TRANSACTION_RECORDED", ["c1"])
    # masked as a query would be: no email for a partner
    assert customer == {"id": "c1", "name": "Name c1", "city": "Leeds",
                        "email": customer["email"]}  # fmt: skip
    assert customer["email"] == "n•••@x.org" and again["id"] == "c1"
    # each customer a subscription showed is in the audit trail, as a query's would be
    log = await served.http.post(
        "/graphql", headers={"Authorization": f"Bearer {served.admin}"},
        json={"query": '{ auditLog(customerId: "c1") { nodes { keyId operation customerIds } } }'},
    )  # fmt: skip
    shown = [e for e in log.json()["data"]["auditLog"]["nodes"] if e["keyId"] == acme.id]
    assert [(e["operation"], e["customerIds"]) for e in shown] == [
        ("subscription customerChanged", ["c1"]),
        ("subscription customerChanged", ["c1"]),
    ]
    assert [(e["type"], e["customerIds"]) for e in seen] == [
        ("CUSTOMER_UPDATED", ["c2"]),
        ("CUSTOMER_UPDATED", ["c1"]),
    ]


async def test_a_field_the_key_may_not_read_is_refused_at_subscribe(
    served: Served, store: GraphStore
) -> None:
    _, partner = await create_key(store, "partner", "acme")
    async with subscriber(served.url, bearer(partner)) as client:
        refused = await client.subscribe(
            'subscription { customerChanged(ids: ["c1"]) '
            "{ id interactions { nodes { subject } } } }"
        )
        message = await client.message(refused)
    assert message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "FORBIDDEN"
    assert PRESETS["partner"] == frozenset({Scope.PROFILE, Scope.ORDERS})


async def test_a_key_revoked_while_subscribed_receives_nothing_more(
    served: Served, store: GraphStore
) -> None:
    info, key = await create_key(store, "analyst", "soon gone")
    async with subscriber(served.url, bearer(key)) as client:
        events = await live(served, client, EVENTS)
        await served.customers("c1")
        assert (await client.next(events))["data"]["events"]["customerIds"] == ["c1"]
        await revoke_key(store, info.id)
        await asyncio.sleep(1.1)  # RECHECK_SECONDS: how stale a subscription's key may be
        await served.customers("c2")
        ended = await client.message(events)
        completed = await client.message(events)
    # the subscription ends: an error in a last `next`, then `complete`
    assert completed["type"] == "complete"
    assert ended["type"] == "next" and ended["payload"]["data"] is None
    error = ended["payload"]["errors"][0]
    assert error["message"] == "this API key has been revoked"
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


# -- limits ----------------------------------------------------------------------------------


@pytest.mark.settings(max_cost=50)
async def test_the_cost_limit_applies_to_a_subscription(served: Served) -> None:
    costly = ('subscription { customerChanged(ids: ["c1"]) { id transactions(first: 100) '
              "{ nodes { id } } } }")  # fmt: skip
    async with subscriber(served.url, bearer(served.admin)) as client:
        refused = await client.message(await client.subscribe(costly))
        cheap = await live(served, client, CHANGED, ids=["c1"])
        assert served.open_subscriptions == 1
        await client.complete(cheap)
    assert refused["type"] == "error"
    error = refused["payload"][0]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert "over the maximum of 50" in error["message"]


@pytest.mark.settings(subscriptions_per_key=2)
async def test_a_key_has_at_most_its_subscriptions_over_all_its_connections(
    served: Served,
) -> None:
    async with (
        subscriber(served.url, bearer(served.admin)) as one,
        subscriber(served.url, bearer(served.admin)) as two,
    ):
        first = await live(served, one, EVENTS)
        await live(served, two, EVENTS)
        third = await two.message(await two.subscribe(EVENTS))
        assert third["type"] == "error"
        assert third["payload"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
        # one completed, another may start
        await one.complete(first)
        for _ in range(100):
            if served.open_subscriptions == 1:
                break
            await asyncio.sleep(0.05)
        fourth = await live(served, two, EVENTS)
        await served.customers("c9")
        assert (await two.next(fourth))["data"]["events"]["customerIds"] == ["c9"]


async def test_queries_and_mutations_are_refused_over_a_websocket(served: Served) -> None:
    async with subscriber(served.url, bearer(served.admin)) as client:
        answer = await client.message(await client.subscribe("{ __typename }"))
    assert answer["type"] == "error"
    assert answer["payload"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "HTTP POST" in answer["payload"][0]["message"]


async def test_a_disconnect_ends_its_subscriptions_and_their_tasks(served: Served) -> None:
    before = len(asyncio.all_tasks())
    async with subscriber(served.url, bearer(served.admin)) as client:
        for _ in range(3):
            await client.subscribe(EVENTS)
        await client.subscribe(CHANGED, {"ids": ["c1"]})
        await served.registered(4)
    for _ in range(200):
        if served.open_subscriptions == 0 and len(asyncio.all_tasks()) <= before + 1:
            break
        await asyncio.sleep(0.05)
    assert served.open_subscriptions == 0
    # the poller (started by the first subscription) is the one task more
    assert len(asyncio.all_tasks()) <= before + 1


# -- scopes of source systems and segments, and what a scoped subscription costs --------------

SCOPED_EVENTS = "subscription($types: [EventType!]) { events(types: $types) { type customerIds } }"


async def test_source_and_segment_partners_receive_the_erasures_and_merges_of_their_customers(
    served: Served, store: GraphStore
) -> None:
    # given customers of the shop and of the crm, some in the VIP segment, and a partner key
    # limited to the shop's customers, another to the VIP segment's
    await scoped_changes.customers(store, served.write)
    keys = {scope: (await create_key(store, "partner", "p", customers=scope))[1]
            for scope in scoped_changes.EXPECTED}  # fmt: skip
    types = [t.upper().replace(".", "_") for t in scoped_changes.TYPES]
    async with contextlib.AsyncExitStack() as stack:
        clients = {}
        for scope, key in keys.items():
            client = await stack.enter_async_context(subscriber(served.url, bearer(key)))
            clients[scope] = (client, await live(served, client, SCOPED_EVENTS, types=types))
        # when customers in and out of each scope are erased and merged, then z1 (in both)
        # is updated
        await scoped_changes.changes(served.write)
        # then each receives the erasure and the merge of its own customers, nothing else
        # before the update of z1, which comes last
        for scope, expected in scoped_changes.EXPECTED.items():
            client, operation = clients[scope]
            got = [(await client.next(operation))["data"]["events"] for _ in expected]
            assert [(g["type"].lower().replace("_", "."), g["customerIds"]) for g in got] == (
                expected
            ), scope
            assert client.pending(operation) == 0


def counting_scope_checks(store: GraphStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements read from now on that test a customer scope of source systems (the
    scope predicate's pattern: `CustomerScope.expression`)."""
    seen: list[str] = []
    read = store.read

    async def counted(query: str, params: Any = None) -> Any:
        if "ScopeSrc" in query:
            seen.append(query)
        return await read(query, params)

    monkeypatch.setattr(store, "read", counted)
    return seen


async def test_a_scoped_subscription_asks_the_store_only_about_the_events_it_wants(
    served: Served, store: GraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given 60 customers of the shop, and a partner key limited to the shop's customers that
    # follows one of them, and the transactions of all
    ids = [f"s{i}" for i in range(60)]
    await served.write(UPSERT, input=[{"id": i, "name": i, "sourceSystem": "shop"} for i in ids])
    _, partner = await create_key(store, "partner", "shop", customers=scope_of(systems=["shop"]))
    async with subscriber(served.url, bearer(partner)) as client:
        changed = await live(served, client, CHANGED, ids=["s0"])
        orders = await live(served, client, SCOPED_EVENTS, types=["TRANSACTION_RECORDED"])
        checks = counting_scope_checks(store, monkeypatch)
        # when the 59 others are updated, then s0, then s0 places an order
        for i in ids[1:]:
            await served.write(UPSERT, input=[{"id": i, "city": "York"}])
        await served.write(UPSERT, input=[{"id": "s0", "city": "Hull"}])
        assert (await client.next(changed))["data"]["customerChanged"]["city"] == "Hull"
        await served.write(
            RECORD_TRANSACTION,
            input={"id": "t1", "customerId": "s0", "at": "2024-05-01T10:00:00Z",
                   "lines": [{"amount": 10.0}]},
        )  # fmt: skip
        order = (await client.next(orders))["data"]["events"]
        assert (order["type"], order["customerIds"]) == ("TRANSACTION_RECORDED", ["s0"])
        await client.next(changed)  # the order is about s0 too
    # then the scope was checked for s0's update and for the order, by each subscription that
    # wants them, and s0 read twice: never for the 59 updates no subscription wants (they were
    # one statement each, sharing the hub's four slots, before)
    assert len(checks) <= 5, checks
