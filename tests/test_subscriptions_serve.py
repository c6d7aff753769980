"""Subscriptions through a real `crm-graph serve` (embedded FalkorDB, and Neo4j when NEO4J_URI is
set): a websocket client speaking graphql-transport-ws receives the changes another client's
mutations make, in order; a partner limited to one source system receives none about other
customers."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.server import _cli, api_server, wait_ready
from crm_graph.graph import events
from crm_graph.graph.settings import parse_store
from crm_graph.graph.store import open_store
from tests.helpers import write_csv
from tests.serving import serve_store
from tests.ws_client import subscriber

EVENTS = "subscription($from: Int) { events(fromSequence: $from) { sequence type customerIds } }"
CHANGED = """subscription($ids: [ID!]!, $from: Int) {
  customerChanged(ids: $ids, fromSequence: $from) { id name city email }
}"""


async def last_sequence(data_dir: Path, store: str | None) -> int:
    """Where the outbox is before the server starts: the subscriptions replay from there, so
    that what they receive does not depend on when the server registered them."""
    settings = parse_store(store, data_dir=data_dir)
    opened = await open_store(settings)
    try:
        return await events.last_sequence(opened)
    finally:
        await opened.close()


def crm_graph(data_dir: Path, store: str | None, *args: str) -> str:
    done = subprocess.run(_cli(data_dir, *args, store=store), capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def new_key(data_dir: Path, store: str | None, *args: str) -> str:
    return crm_graph(data_dir, store, "keys", "create", *args).strip().splitlines()[-1]


async def write(client: httpx.AsyncClient, key: str, query: str, **variables: Any) -> None:
    answer = await client.post("/graphql", json={"query": query, "variables": variables},
                               headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    body = answer.json()
    assert answer.status_code == 200 and "errors" not in body, body
    (result,) = body["data"].values()
    assert result["__typename"].endswith("Success"), result


UPSERT = "mutation($input: [CustomerInput!]!) { upsertCustomers(input: $input) { __typename } }"
ORDER = "mutation($input: TransactionInput!) { recordTransaction(input: $input) { __typename } }"


@pytest.mark.parametrize("engine", ["embedded", "neo4j"])
async def test_a_subscriber_receives_what_another_client_changes_within_its_scope(
    tmp_path: Path, engine: str
) -> None:
    store = await serve_store(engine)
    # given customers of two source systems, an admin key and a partner limited to acme's
    data_dir = tmp_path / "data"
    folder = tmp_path / "in"
    write_csv(folder / "customers.csv", [
        {"customer_id": "c1", "name": "Ann", "email": "ann@x.org", "source_system": "acme"},
        {"customer_id": "c2", "name": "Bob", "email": "bob@x.org", "source_system": "shop"},
    ])  # fmt: skip
    write_csv(folder / "products.csv", [{"product_id": "p1", "name": "Mug", "price": "5"}])
    crm_graph(data_dir, store, "--create", "load", str(folder), "--no-progress")
    admin = new_key(data_dir, store, "--role", "admin", "--name", "ops")
    partner = new_key(data_dir, store, "--role", "partner", "--name", "acme",
                      "--customers", "source:acme")  # fmt: skip
    start = await last_sequence(data_dir, store)
    with api_server(data_dir, tmp_path / "serve.log", store=store) as server:
        await wait_ready(server)
        async with (
            httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=60) as client,
            subscriber(server.url, {"authorization": f"Bearer {admin}"}) as watching,
            subscriber(server.url, {"apiKey": partner}) as acme,
        ):
            everything = await watching.subscribe(EVENTS, {"from": start})
            scoped = await acme.subscribe(EVENTS, {"from": start})
            changed = await acme.subscribe(CHANGED, {"ids": ["c1", "c2"], "from": start})
            # when another client changes both customers (orders: an upsert over the API
            # makes a customer's source record `default`, which takes it out of acme's scope)
            await write(client, admin, ORDER, input={
                "id": "t1", "customerId": "c1", "at": "2024-05-01T10:00:00Z",
                "lines": [{"productId": "p1", "quantity": 2, "unitPrice": 5}]})  # fmt: skip
            await write(client, admin, ORDER, input={
                "id": "t2", "customerId": "c2", "at": "2024-05-01T10:00:00Z",
                "lines": [{"productId": "p1", "quantity": 1, "unitPrice": 5}]})  # fmt: skip
            await write(client, admin, UPSERT, input=[{"id": "c2", "city": "York"}])
            await write(client, admin, ORDER, input={
                "id": "t3", "customerId": "c1", "at": "2024-05-02T10:00:00Z",
                "lines": [{"productId": "p1", "quantity": 1, "unitPrice": 5}]})  # fmt: skip
            # then the admin's subscription gets every change, in order
            seen = [(await watching.next(everything))["data"]["events"] for _ in range(4)]
            # and the partner only acme's customer's: its two orders
            mine = [(await acme.next(scoped))["data"]["events"] for _ in range(2)]
            customers = [(await acme.next(changed))["data"]["customerChanged"] for _ in range(2)]
            assert acme.pending(scoped) == acme.pending(changed) == 0
    assert [(e["type"], e["customerIds"]) for e in seen] == [
        ("TRANSACTION_RECORDED", ["c1"]),
        ("TRANSACTION_RECORDED", ["c2"]),
        ("CUSTOMER_UPDATED", ["c2"]),
        ("TRANSACTION_RECORDED", ["c1"]),
    ]
    sequences = [e["sequence"] for e in seen]
    assert sequences == list(range(start + 1, start + 5))
    assert [(e["type"], e["customerIds"]) for e in mine] == [
        ("TRANSACTION_RECORDED", ["c1"]),
        ("TRANSACTION_RECORDED", ["c1"]),
    ]
    assert [e["sequence"] for e in mine] == [start + 1, start + 4]
    # the customer as the partner's queries see it: acme's only, its email masked
    assert [(c["id"], c["name"]) for c in customers] == [("c1", "Ann"), ("c1", "Ann")]
    assert all(c["email"] != "ann@x.org" for c in customers)
