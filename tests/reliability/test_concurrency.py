"""Many writers at once, and a load while the API answers: nobody's write is lost or doubled.

Concurrent clients (asyncio tasks) upsert the same customers, record orders for shared customers
and tie the same pairs, against the real ASGI app and against a real `crm-graph serve` over
HTTP. Then: one node per id, the last acknowledged value of every writer is what can be seen,
every customer's spend and order count are the sum of the acknowledged orders, no tie doubled.
And a `crm-graph load` into the data directory a `crm-graph serve` is using, while a client keeps
reading: every query answered, the load complete.
"""

from __future__ import annotations

import asyncio
import csv
import random
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.api import GRAPHQL_360
from bench.server import api_server, create_admin_key, wait_ready
from crm_graph.api.auth.principal import Role
from crm_graph.graph import events, loader_writes
from crm_graph.graph.embedded import EmbeddedServer
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore, open_store
from crm_graph.loaders.identity import footprint
from crm_graph.loaders.load import load_folder
from crm_graph.loaders.synthetic import generate
from tests.conftest import Api
from tests.helpers import stop_embedded_server, write_csv

WRITERS = 16
ROUNDS = 6
SHARED = [f"s{i}" for i in range(5)]
"""Each writer writes one of these per round: with 6 rounds, one of them twice."""
PAIRS = [("s0", "s1"), ("s1", "s2"), ("s2", "s0"), ("s3", "s4")]
RACED_NEW = [f"n{i}" for i in range(4)]
"""Ids no one has written before, created by every writer at the same moment."""
PEOPLE = 8
SYSTEMS = ("web", "crm", "shop", "app")
"""Each person has a record in every system, all with their email: one customer each, however
the records' writers interleave."""
SHARED_ORDER = "t-shared"
TIME_BOUND = 120.0

UPSERT = """
mutation($input: [CustomerInput!]!) {
  upsertCustomers(input: $input) {
    __typename
    ... on UpsertCustomersSuccess { customers { id name } }
    ... on UpsertCustomersError { code field message }
  }
}
"""
RECORD = """
mutation($input: TransactionInput!) {
  recordTransaction(input: $input) {
    __typename
    ... on RecordTransactionSuccess { transaction { id total } }
    ... on RecordTransactionError { code field message }
  }
}
"""
LINK = """
mutation($input: LinkCustomersInput!) {
  linkCustomers(input: $input) {
    __typename
    ... on LinkCustomersSuccess { tie { sourceId targetId weight } }
    ... on LinkCustomersError { code field message }
  }
}
"""
SPEND = """
query($ids: [ID!]!) { customers: customers(where: {id: {in: $ids}}, first: 50) {
  nodes { id name totalSpend orderCount socialTies { nodes { type customer { id } } } } } }
"""

Post = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""Send a GraphQL document; return its `data`, having checked a 200 without errors."""


def asgi_post(api: Api) -> Post:
    async def post(document: str, variables: dict[str, Any]) -> dict[str, Any]:
        return await api.data(document, **variables)

    return post


def http_post(client: httpx.AsyncClient, key: str) -> Post:
    async def post(document: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(
            "/graphql",
            json={"query": document, "variables": variables},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]  # type: ignore[no-any-return]

    return post


@dataclass
class Acknowledged:
    """What the writers were told was done."""

    names: dict[str, dict[int, list[str]]] = field(default_factory=lambda: defaultdict(dict))
    """customer -> writer -> the names it wrote there, in order."""
    orders: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    """customer -> order id -> acknowledged total."""
    weights: dict[tuple[str, str], dict[int, list[float]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    shared_order_totals: set[float] = field(default_factory=set)
    writes: int = 0
    most_in_flight: int = 0
    """The most requests that were under way at one moment."""


def amount(writer: int, round_: int) -> float:
    """Exact in binary floating point, so sums do not depend on their order."""
    return 10 + (writer * 31 + round_ * 17) % 90 + 0.25


async def write_concurrently(send: Post) -> Acknowledged:
    done = Acknowledged()
    in_flight = 0

    async def post(document: str, variables: dict[str, Any]) -> dict[str, Any]:
        nonlocal in_flight
        in_flight += 1
        done.most_in_flight = max(done.most_in_flight, in_flight)
        try:
            return await send(document, variables)
        finally:
            in_flight -= 1

    created = await post(UPSERT, {"input": [{"id": customer} for customer in SHARED]})
    assert created["upsertCustomers"]["__typename"] == "UpsertCustomersSuccess", created
    start = asyncio.Event()

    async def writer(w: int) -> None:
        await start.wait()
        # one person's records from several systems, sent by several writers at once
        records = [(p, system) for p in range(PEOPLE) for system in SYSTEMS]
        for p, system in records[w::WRITERS]:
            record = {"id": f"{system}-{p}", "email": f"person{p}@example.org",
                      "sourceSystem": system}  # fmt: skip
            result = await post(UPSERT, {"input": [record]})
            assert result["upsertCustomers"]["__typename"] == "UpsertCustomersSuccess", result
            done.writes += 1
        # every writer creates the same new customers at the same moment
        result = await post(UPSERT, {"input": [{"id": i, "city": f"w{w}"} for i in RACED_NEW]})
        assert result["upsertCustomers"]["__typename"] == "UpsertCustomersSuccess", result
        # and records the same order, with its own amount
        order = {"id": SHARED_ORDER, "customerId": "s0", "at": "2024-03-01T00:00:00Z",
                 "lines": [{"productId": "p-shared", "unitPrice": w + 1.5}]}  # fmt: skip
        result = await post(RECORD, {"input": order})
        assert result["recordTransaction"]["__typename"] == "RecordTransactionSuccess", result
        done.shared_order_totals.add(w + 1.5)
        done.writes += 2
        for r in range(ROUNDS):
            customer = SHARED[(w + r) % len(SHARED)]
            name = f"{customer} by w{w} r{r}"
            result = await post(UPSERT, {"input": [{"id": customer, "name": name}]})
            assert result["upsertCustomers"]["__typename"] == "UpsertCustomersSuccess", result
            done.names[customer].setdefault(w, []).append(name)

            buyer = SHARED[(w * 3 + r) % len(SHARED)]
            order = {"id": f"t-w{w}-r{r}", "customerId": buyer, "at": f"2024-04-{r + 1:02d}",
                     "lines": [{"productId": "p-shared", "quantity": 2,
                                "unitPrice": amount(w, r) / 2}]}  # fmt: skip
            result = await post(RECORD, {"input": order})
            recorded = result["recordTransaction"]
            assert recorded["__typename"] == "RecordTransactionSuccess", result
            assert recorded["transaction"]["total"] == amount(w, r)
            done.orders[buyer][order["id"]] = amount(w, r)

            source, target = PAIRS[(w + r) % len(PAIRS)]
            weight = round(w / 100 + r / 1000, 3)
            tie = {"sourceId": source, "targetId": target, "weight": weight}
            result = await post(LINK, {"input": tie})
            assert result["linkCustomers"]["__typename"] == "LinkCustomersSuccess", result
            done.weights[(source, target)].setdefault(w, []).append(weight)
            done.writes += 3

    tasks = [asyncio.create_task(writer(w)) for w in range(WRITERS)]
    start.set()
    await asyncio.wait_for(asyncio.gather(*tasks), TIME_BOUND)
    assert done.most_in_flight >= WRITERS // 2, "the writers did not overlap"
    return done


SHARED_PRODUCT = "MERGE (:Product {id: 'p-shared', name: 'Shared'})"
"""The product every writer's orders name: loaded first, as orders never invent a product."""


async def check(store: GraphStore, post: Post, done: Acknowledged) -> None:
    # one node per id, one source record, whoever created it
    counts = await store.read(
        "MATCH (c:Customer) WITH c.id AS id, count(*) AS n "
        "OPTIONAL MATCH (:Customer {id: id})-[:HAS_SOURCE]->(s:SourceRecord) "
        "RETURN id, n, count(s) AS sources"
    )
    assert all(r["n"] == 1 for r in counts), counts
    by_id = {r["id"]: r["sources"] for r in counts if not r["id"].startswith(SYSTEMS)}
    assert by_id == {i: 1 for i in [*SHARED, *RACED_NEW]}

    # identity resolution saw every record the others had written: one customer per person,
    # holding that person's record of every system
    people = await store.read(
        "MATCH (c:Customer)-[:HAS_SOURCE]->(s:SourceRecord) WHERE s.emailKey IS NOT NULL "
        "RETURN s.emailKey AS email, collect(DISTINCT c.id) AS customers, "
        "collect(s.system) AS systems"
    )
    assert len(people) == PEOPLE
    for person in people:
        assert len(person["customers"]) == 1, person
        assert sorted(person["systems"]) == sorted(SYSTEMS), person
    products = await store.read("MATCH (p:Product) RETURN p.id AS id, count(*) AS n")
    assert products == [{"id": "p-shared", "n": 1}]

    # every writer's last write to a customer was acknowledged after its earlier ones: the
    # value seen is the last write of one of the writers, never an earlier one
    graph = await post(SPEND, {"ids": SHARED})
    seen = {c["id"]: c for c in graph["customers"]["nodes"]}
    for customer, by_writer in done.names.items():
        assert seen[customer]["name"] in {names[-1] for names in by_writer.values()}

    # the shared order: one order, one line, the total one writer gave it
    shared = await store.read(
        "MATCH (c:Customer)-[:PLACED]->(t:Transaction {id: $id}) "
        "RETURN c.id AS customer, t.total AS total, t.itemCount AS items, "
        "size([(t)-[:CONTAINS]->(p) | p]) AS lines",
        {"id": SHARED_ORDER},
    )
    assert len(shared) == 1 and shared[0]["lines"] == 1 and shared[0]["items"] == 1
    assert shared[0]["total"] in done.shared_order_totals
    done.orders["s0"][SHARED_ORDER] = shared[0]["total"]

    # spend and order count: the sum of the acknowledged orders, nothing lost, nothing doubled
    for customer in SHARED:
        orders = done.orders[customer]
        assert seen[customer]["orderCount"] == len(orders), customer
        assert seen[customer]["totalSpend"] == sum(orders.values()), customer
    placed = await store.read(
        "MATCH (t:Transaction) RETURN count(t) AS orders, "
        "sum(size([(c:Customer)-[:PLACED]->(t) | c])) AS placed"
    )
    assert placed == [{"orders": WRITERS * ROUNDS + 1, "placed": WRITERS * ROUNDS + 1}]

    # ties: one per pair, its weight the last one of some writer
    ties = await store.read(
        "MATCH (a:Customer)-[k:KNOWS]->(b:Customer) "
        "RETURN a.id AS a, b.id AS b, count(k) AS n, collect(k.weight) AS weights"
    )
    assert {(r["a"], r["b"]): r["n"] for r in ties} == {pair: 1 for pair in PAIRS}
    for r in ties:
        last = {weights[-1] for weights in done.weights[(r["a"], r["b"])].values()}
        assert r["weights"][0] in last
    for customer in SHARED:
        tied = [t["customer"]["id"] for t in seen[customer]["socialTies"]["nodes"]]
        assert len(tied) == len(set(tied)), customer

    # the outbox: one event per acknowledged change, numbered 1..n without a gap or a repeat
    # (Neo4j interleaves the writers: the counter's lock is what orders them)
    found = await events.events_after(store, 0, limit=10_000)
    assert [e.sequence for e in found] == list(range(1, len(found) + 1))
    assert await events.last_sequence(store) == len(found)
    by_type: dict[str, int] = defaultdict(int)
    for e in found:
        by_type[e.type] += 1
    changed = PEOPLE * len(SYSTEMS) + WRITERS * (len(RACED_NEW) + ROUNDS) + len(SHARED)
    assert by_type["customer.created"] + by_type["customer.updated"] == changed
    assert by_type["transaction.recorded"] == WRITERS * (ROUNDS + 1)
    assert by_type["tie.recorded"] == WRITERS * ROUNDS
    assert len(found) == done.writes + len(SHARED) + WRITERS * (len(RACED_NEW) - 1)
    # each raced new id was created once, whoever won; the others updated it
    for raced in RACED_NEW:
        kinds = [e.type for e in found if e.customer_ids == (raced,)]
        assert sorted(kinds) == ["customer.created"] + ["customer.updated"] * (WRITERS - 1)

    # and once the writers are done, the next acknowledged write is what everyone reads
    final = await post(UPSERT, {"input": [{"id": "s0", "name": "settled"}]})
    assert final["upsertCustomers"]["customers"] == [{"id": "s0", "name": "settled"}]
    after = await post(SPEND, {"ids": ["s0"]})
    assert after["customers"]["nodes"][0]["name"] == "settled"


async def test_concurrent_writers_through_the_app_lose_and_double_nothing(
    store: GraphStore, api_for: Callable[[Role], Any]
) -> None:
    admin: Api = await api_for(Role.ADMIN)
    await store.write(SHARED_PRODUCT)
    done = await write_concurrently(asgi_post(admin))
    await check(store, asgi_post(admin), done)
    print(f"{WRITERS} writers, {done.writes} acknowledged writes checked, "
          f"at most {done.most_in_flight} under way at once")  # fmt: skip


async def test_a_resolution_another_writer_made_stale_is_not_written(store: GraphStore) -> None:
    # given Ann's web record, resolved while no one else had her: a new customer
    keys = {"sourceIds": ["web-ann"], "emails": ["ann@example.org"], "phones": []}
    candidates = await store.read(
        loader_writes.IDENTITY_CANDIDATES, {**keys, "sources": keys["sourceIds"]}
    )
    assert candidates == []
    web = {"id": "web-ann", "customer": "web-ann", "system": "web",
           "emailKey": "ann@example.org", "phoneKey": None}  # fmt: skip
    resolved = {"customers": [{"id": "web-ann", "props": {"name": "Ann"}}], "sources": [web]}
    # when another writer stores her crm record before that resolution is written
    crm = {"id": "crm-ann", "customer": "crm-ann", "system": "crm",
           "emailKey": "ann@example.org", "phoneKey": None}  # fmt: skip
    await store.write(
        loader_writes.UPSERT_CUSTOMERS,
        {"customers": [{"id": "crm-ann", "props": {}}], "sources": [crm]},
    )
    # then the stale resolution writes nothing, and says so
    stale = await store.write(
        loader_writes.UPSERT_CUSTOMERS_IF_UNCHANGED,
        {**resolved, **keys, "footprint": footprint(candidates)},
    )
    assert stale == [{"written": 0}]
    rows = await store.read("MATCH (c:Customer) RETURN c.id AS id")
    assert rows == [{"id": "crm-ann"}]
    # and resolved again against what is stored now, it joins her customer
    candidates = await store.read(
        loader_writes.IDENTITY_CANDIDATES, {**keys, "sources": keys["sourceIds"]}
    )
    joined = {
        "customers": [{"id": "crm-ann", "props": {}}],
        "sources": [{**web, "customer": "crm-ann"}],
    }
    fresh = await store.write(
        loader_writes.UPSERT_CUSTOMERS_IF_UNCHANGED,
        {**joined, **keys, "footprint": footprint(candidates)},
    )
    assert fresh == [{"written": 1}]
    rows = await store.read(
        "MATCH (c:Customer)-[:HAS_SOURCE]->(s:SourceRecord) RETURN c.id AS id, s.id AS source "
        "ORDER BY source"
    )
    assert rows == [{"id": "crm-ann", "source": "crm-ann"}, {"id": "crm-ann", "source": "web-ann"}]


async def test_concurrent_writers_over_http_to_crm_graph_serve_lose_and_double_nothing(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    try:
        _, key = await asyncio.to_thread(create_admin_key, data_dir, "concurrency")
        with api_server(data_dir, tmp_path / "serve.log") as server:
            await wait_ready(server)
            # uvicorn closes a connection idle for 5 s, httpx keeps one for 5 s by default: a
            # writer taking a connection the server was closing at that moment got a ReadError
            # (2 runs in 64 on a loaded machine); idle connections are dropped well before then
            limits = httpx.Limits(
                max_connections=WRITERS, max_keepalive_connections=WRITERS, keepalive_expiry=1.0
            )
            async with httpx.AsyncClient(
                base_url=server.url, trust_env=False, timeout=60, limits=limits
            ) as client:
                store = await open_store(StoreSettings(kind="embedded", data_dir=data_dir))
                try:
                    await store.write(SHARED_PRODUCT)
                finally:
                    await store.close()
                done = await write_concurrently(http_post(client, key))
                store = await open_store(StoreSettings(kind="embedded", data_dir=data_dir))
                try:
                    await check(store, http_post(client, key), done)
                finally:
                    await store.close()
            assert server.process.poll() is None, server.log_tail()
        assert server.process.returncode == 0, server.log_tail()
        # serve was the last to let go of the store, and stopped it
        assert EmbeddedServer(data_dir).read_record() is None
    finally:
        stop_embedded_server(data_dir)
    print(f"{WRITERS} writers, {done.writes} acknowledged writes checked, "
          f"at most {done.most_in_flight} under way at once")  # fmt: skip


# -- a load while serve answers queries ---------------------------------------------------------

PRELOADED = 40
LOADED = 800
READERS = 4
CUSTOMERS_PAGE = """
query($after: String) {
  customers(first: 25, after: $after) {
    totalCount
    nodes { id name totalSpend orderCount }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def preloaded_business(folder: Path) -> Path:
    """A small business whose ids cannot meet the generated one's."""
    write_csv(folder / "customers.csv", [
        {"customer_id": f"pre-{i:02d}", "name": f"Early {i}", "email": f"early{i}@pre.example",
         "country": "GB"} for i in range(PRELOADED)
    ])  # fmt: skip
    write_csv(folder / "products.csv", [{"product_id": "pre-p", "name": "Kettle", "price": "20"}])
    write_csv(folder / "transactions.csv", [
        {"transaction_id": f"pre-t{i}", "customer_id": f"pre-{i:02d}",
         "timestamp": "2024-01-01", "product_id": "pre-p", "amount": "20"}
        for i in range(PRELOADED)
    ])  # fmt: skip
    write_csv(folder / "social_ties.csv", [
        {"source_customer_id": f"pre-{i:02d}", "target_customer_id": f"pre-{i + 1:02d}"}
        for i in range(PRELOADED - 1)
    ])  # fmt: skip
    return folder


async def counts(store: GraphStore) -> dict[str, int]:
    """Nodes by label and relationships by type; not audit entries, which the reads add, nor
    the outbox's events, whose number depends on how the writers interleaved."""
    nodes = await store.read(
        "MATCH (n) WHERE NOT n:AuditEntry AND NOT n:Event AND NOT n:EventSequence "
        "RETURN labels(n)[0] AS key, count(n) AS n"
    )
    rels = await store.read("MATCH ()-[r]->() RETURN type(r) AS key, count(r) AS n")
    return {row["key"]: row["n"] for row in [*nodes, *rels]}


async def loaded_alone(folder: Path, data_dir: Path, rejects: Path) -> dict[str, int]:
    store = await open_store(StoreSettings(kind="embedded", data_dir=data_dir))
    try:
        await load_folder(store, folder, rejects_path=rejects, progress=False)
        return await counts(store)
    finally:
        await store.close()


def emails_of(folder: Path, count: int) -> list[str]:
    """Normalised emails of the first `count` customers of a folder that have one."""
    with open(folder / "customers.csv", newline="", encoding="utf-8") as fh:
        emails = [row["email"].strip().lower() for row in csv.DictReader(fh) if row["email"]]
    return list(dict.fromkeys(emails))[:count]


async def test_a_load_while_serve_answers_every_query(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    business = tmp_path / "business"
    generate(business, LOADED, 9)
    # what the two folders give when each is loaded alone
    expected = await loaded_alone(
        preloaded_business(tmp_path / "early"), data_dir, tmp_path / "early.rejects.csv"
    )
    alone = await loaded_alone(business, tmp_path / "alone", tmp_path / "alone.rejects.csv")
    for name, n in alone.items():
        expected[name] = expected.get(name, 0) + n
    expected["ApiKey"] = 1
    early_ids = [f"pre-{i:02d}" for i in range(PRELOADED)]
    later_ids = [f"C{i:08d}" for i in range(1, LOADED + 1)]
    partner_emails = emails_of(business, 60)
    answered: list[int] = []
    partner_records: list[str] = []
    try:
        _, key = await asyncio.to_thread(create_admin_key, data_dir, "load while serving")
        with api_server(data_dir, tmp_path / "serve.log") as server:
            await wait_ready(server)
            async with httpx.AsyncClient(
                base_url=server.url, trust_env=False, timeout=60
            ) as client:
                post = http_post(client, key)
                rejects = tmp_path / "business.rejects.csv"
                loader = subprocess.Popen(
                    [sys.executable, "-m", "crm_graph.api.cli", "--data-dir", str(data_dir), "load",
                     str(business), "--no-progress", "--rejects", str(rejects)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True,
                )  # fmt: skip
                try:

                    async def reader(seed: int) -> None:
                        rng = random.Random(seed)
                        cursor: str | None = None
                        while loader.poll() is None:
                            if rng.random() < 0.7:
                                ids = early_ids if rng.random() < 0.5 else later_ids
                                data = await post(GRAPHQL_360, {"id": rng.choice(ids)})
                                customer = data["customer"]
                                assert customer is None or customer["id"] in ids
                            else:
                                data = await post(CUSTOMERS_PAGE, {"after": cursor})
                                page = data["customers"]
                                assert page["totalCount"] >= PRELOADED
                                info = page["pageInfo"]
                                cursor = info["endCursor"] if info["hasNextPage"] else None
                            answered.append(seed)

                    async def partner() -> None:
                        """A partner system sends records of people the load is bringing."""
                        for i, email in enumerate(partner_emails):
                            if loader.poll() is not None:
                                return
                            record = {"id": f"partner-{i}", "email": email,
                                      "sourceSystem": "partner"}  # fmt: skip
                            data = await post(UPSERT, {"input": [record]})
                            outcome = data["upsertCustomers"]["__typename"]
                            assert outcome == "UpsertCustomersSuccess", data
                            partner_records.append(record["id"])
                            await asyncio.sleep(0.02)

                    started = time.monotonic()
                    clients = [*(reader(seed) for seed in range(READERS)), partner()]
                    await asyncio.wait_for(asyncio.gather(*clients), TIME_BOUND)
                    out, err = await asyncio.to_thread(loader.communicate, timeout=TIME_BOUND)
                    seconds = time.monotonic() - started
                finally:
                    if loader.poll() is None:
                        loader.kill()
                        loader.communicate(timeout=30)
                assert loader.returncode == 0, err
                assert "loaded in" in out
                # the load let go of the store without stopping it: serve still uses it
                assert (await client.get("/readyz")).status_code == 200
                store = await open_store(StoreSettings(kind="embedded", data_dir=data_dir))
                try:
                    found = await counts(store)
                    # each partner record joined the customer of the loaded record with its
                    # email, whichever was written first: one more record, no more customers
                    joined = await store.read(
                        "MATCH (c:Customer)-[:HAS_SOURCE]->(p:SourceRecord {system: 'partner'}) "
                        "OPTIONAL MATCH (c)-[:HAS_SOURCE]->(o:SourceRecord) "
                        "WHERE o.emailKey = p.emailKey AND o.system <> 'partner' "
                        "RETURN p.id AS id, count(o) AS others"
                    )
                finally:
                    await store.close()
        assert server.process.returncode == 0, server.log_tail()
        assert EmbeddedServer(data_dir).read_record() is None
    finally:
        stop_embedded_server(data_dir)
    assert partner_records
    assert sorted(r["id"] for r in joined) == sorted(partner_records)
    assert all(r["others"] >= 1 for r in joined), joined
    for name in ("SourceRecord", "HAS_SOURCE"):
        expected[name] += len(partner_records)
    assert found == expected
    # the readers really ran beside the load, every one of them, all the time it lasted
    assert len(answered) >= 30 and set(answered) == set(range(READERS)), len(answered)
    print(f"{len(answered)} queries answered and {len(partner_records)} partner records "
          f"written during a load of {seconds:.1f}s")  # fmt: skip
