"""A hostile partner against a real `crm-graph serve`, on each engine: every attack of issue 15
is refused or bounded, and while it runs a cheap request (`/healthz`, `{ __typename }`) is
answered promptly. "Promptly" is a generous bound (`PROMPT`, a second) against the many seconds
each attack held the server before: no tight timing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.server import api_server, wait_ready
from crm_graph.api.auth.keys import create_key
from crm_graph.api.auth.principal import Role
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore
from tests.conftest import NEO4J_URI

PROMPT = 1.0
"""Seconds within which a cheap request must be answered while an attack runs."""
TIMEOUT = 3.0
"""The server's statement timeout in these tests (`CRM_GRAPH_STATEMENT_TIMEOUT`): a cold Neo4j
on this shared machine took over a second to plan a statement for the first time."""
PEOPLE, TIES_EACH = 300, 30
"""A dense social graph: `knows` 4 deep then walks 30^4 paths from each of 300 customers."""


@dataclass
class Served:
    client: httpx.AsyncClient
    key: str

    async def post(self, query: str, variables: dict[str, Any] | None = None,
                   key: str | None = None) -> httpx.Response:  # fmt: skip
        return await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {key or self.key}"},
        )


@pytest.fixture
async def served(
    store: GraphStore, embedded_settings: StoreSettings, tmp_path: Path
) -> AsyncIterator[Served]:
    """`crm-graph serve` on the test's store (FalkorDB: its graph in the session's data
    directory; Neo4j: NEO4J_URI), holding a dense social graph, with an admin key."""
    await store.write(
        "UNWIND range(0, $n - 1) AS i CREATE (:Customer {id: 'H' + toString(i), "
        "name: 'Hostile ' + toString(i), country: 'GB'})",
        {"n": PEOPLE},
    )
    await store.write(
        "UNWIND $pairs AS p MATCH (a:Customer {id: p[0]}), (b:Customer {id: p[1]}) "
        "CREATE (a)-[:KNOWS {since: 0, weight: 1.0}]->(b)",
        {"pairs": [[f"H{i}", f"H{(i + j) % PEOPLE}"] for i in range(PEOPLE)
                   for j in range(1, TIES_EACH + 1)]},
    )  # fmt: skip
    _, key = await create_key(store, Role.ADMIN, "hostile test")
    if "neo4j" in store.description.lower():
        env = {"CRM_GRAPH_STORE": NEO4J_URI or ""}
    else:
        env = {"CRM_GRAPH_STORE": "embedded", "CRM_GRAPH_GRAPH": store.graph_name}  # type: ignore[attr-defined]
    env |= {
        "CRM_GRAPH_STATEMENT_TIMEOUT": str(TIMEOUT),
        "CRM_GRAPH_RATE_POINTS": "1000000",
        "CRM_GRAPH_AUTH_FAILURES": "0.01",  # refills one failure in 100 minutes: none in a test
        "CRM_GRAPH_AUTH_FAILURE_BURST": "20",
        "CRM_GRAPH_ENV": "production",
    }
    with api_server(embedded_settings.data_dir, tmp_path / "serve.log", env=env) as server:
        await wait_ready(server)
        async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=60) as client:
            served = Served(client, key)
            for _ in range(3):  # plans made, caches warm: the first statements take longest
                await served.post(
                    '{ customer(id: "H1") { id name socialTies { nodes { type } } } }'
                )
            # the warm-up's audit entries written now, not during the attack (the server writes
            # them every second): on FalkorDB a write waiting behind a long read holds every
            # read after it, up to the statement timeout (README, Guarantees and limits)
            await served.post("{ auditLog(first: 1) { nodes { keyId } } }")
            yield served


async def while_probing(served: Served, attack: Awaitable[Any]) -> tuple[Any, float]:
    """Run `attack`, and meanwhile `/healthz` and `{ __typename }` with the key every 50 ms:
    what the attack answered, and the slowest probe in seconds."""
    slowest = 0.0
    done = asyncio.Event()

    async def probe() -> None:
        nonlocal slowest
        while not done.is_set():
            for request in (
                served.client.get("/healthz"),
                served.post("{ __typename }"),
            ):
                started = time.perf_counter()
                response = await request
                slowest = max(slowest, time.perf_counter() - started)
                assert response.status_code == 200, response.text
            await asyncio.sleep(0.05)

    prober = asyncio.create_task(probe())
    try:
        answer = await attack
    finally:
        done.set()
        await prober
    return answer, slowest


def fan_out(lines: int, leaf: str) -> str:
    """19 fragments each spreading the next twice (~800 bytes): 2^19 paths through them."""
    fragments = [f"fragment F{i} on Customer {{ ...F{i + 1} ...F{i + 1} }}" for i in range(lines)]
    fragments.append(f"fragment F{lines} on Customer {{ {leaf} }}")
    return 'query { customer(id: "H1") { ...F0 } }\n' + "\n".join(fragments)


async def test_a_fragment_fan_out_neither_blocks_nor_runs_up(served: Served) -> None:
    # given documents of 19 (then 30) fragments each spreading the next twice: with scalar
    # leaves (cheap: answered) and with a list at the leaves (2^19 lists: refused for its cost)
    ties = "socialTies { nodes { customer { id } } }"
    for lines, leaf, code in ((19, "id name", None), (30, "id name", None),
                              (19, ties, "QUERY_TOO_COSTLY")):  # fmt: skip
        # a character changed each time: no cache helps
        document = fan_out(lines, leaf) + f" # {lines} {leaf}"
        # when it is posted while the probes run
        response, slowest = await while_probing(served, served.post(document))
        # then it is answered (or refused for its cost) and the probes were answered promptly
        body = response.json()
        if code is None:
            assert body["data"] == {"customer": {"id": "H1", "name": "Hostile 1"}}, body
        else:
            assert body["errors"][0]["extensions"]["code"] == code
        assert slowest < PROMPT, (lines, leaf, slowest)


NESTED = """query($w: CustomerFilter) {
  customers(where: $w, first: 100) { nodes { id } }
}"""


def knows(depth: int) -> dict[str, Any]:
    where: dict[str, Any] = {"country": {"eq": "ZZ"}}
    for _ in range(depth):
        where = {"knows": where}
    return where


async def test_nested_relationship_filters_are_refused_or_stopped_by_the_timeout(
    served: Served,
) -> None:
    # given `knows` 4 deep (within the cost: 30^4 paths from each customer) and 5 deep
    started = time.perf_counter()
    response, slowest = await while_probing(served, served.post(NESTED, {"w": knows(4)}))
    took = time.perf_counter() - started
    # then the 4-deep one is stopped by the store-side timeout, answered TIMEOUT
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "TIMEOUT", body
    assert "Traceback" not in response.text and "Cypher" not in response.text
    assert took < TIMEOUT + 10, took  # the store let go (it took many seconds, unbounded, before)
    assert slowest < PROMPT, slowest
    # and the store is free again: a cheap statement answers at once
    after = await served.post('{ customer(id: "H2") { id } }')
    assert after.json()["data"] == {"customer": {"id": "H2"}}
    # the 5-deep one is refused before it runs, for its cost
    deeper = (await served.post(NESTED, {"w": knows(5)})).json()
    assert deeper["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"


AMPLIFIED = """{ %s }"""
NEIGHBOURS = (
    'neighbourhood(id: "H1", depth: 3, limit: 500) { members { customer { '
    "socialTies(first: 100) { nodes { customer { socialTies(first: 100) { nodes { customer { id } "
    "} } } } } "
    "} } }"
)
"""Ties of ties (pages of 100) under each of 500 members: two levels, as a third would pass the
depth limit (10: each page adds its `nodes`) and be refused before its cost."""


async def test_nested_lists_that_amplify_are_refused_for_their_cost(served: Served) -> None:
    # given socialTies nested under a neighbourhood three times, alone and under four aliases
    for document in (
        AMPLIFIED % NEIGHBOURS,
        AMPLIFIED % " ".join(f"a{i}: {NEIGHBOURS}" for i in range(4)),
    ):
        # when posted while the probes run
        response, slowest = await while_probing(served, served.post(document))
        # then refused before execution, with the cost and the maximum, promptly
        body = response.json()
        [error] = body["errors"]
        assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
        cost = error["extensions"]["cost"]
        assert cost["requested"] > cost["maximum"] == body["extensions"]["cost"]["maximum"]
        assert len(response.content) < 2000
        assert slowest < PROMPT


HEAVIEST = (
    "{ customers(first: 4) { nodes { id socialTies(first: 100) { nodes { type since customer "
    "{ id name socialTies(first: 100) { nodes { type customer { id name country } } } } } } } } }"
)
"""Near the cost maximum (4 customers x 100 ties x 100 ties): on the dense graph, 4 x 60 x 60
customers answered (each has 30 ties out and 30 in)."""


async def test_the_heaviest_allowed_requests_leave_cheap_requests_answered(
    served: Served,
) -> None:
    # given a request costing more than half the maximum, within it
    async def heavy() -> list[httpx.Response]:
        return [await served.post(HEAVIEST)]

    # when it runs while the probes run
    answers, slowest = await while_probing(served, heavy())
    # then it is answered whole, or stopped by the statement timeout (on a loaded machine
    # the 14,400 ties of 240 customers took over its 3 s): bounded either way; and the cheap
    # requests were answered promptly meanwhile
    for response in answers:
        body = response.json()
        assert response.status_code == 200
        cost = body["extensions"]["cost"]
        assert cost["maximum"] / 2 < cost["requested"] <= cost["maximum"]
        if body.get("errors"):
            assert {e["extensions"]["code"] for e in body["errors"]} == {"TIMEOUT"}, body
            continue
        nodes = body["data"]["customers"]["nodes"]
        assert len(nodes) == 4
        assert sum(
            len(t["customer"]["socialTies"]["nodes"])
            for n in nodes
            for t in n["socialTies"]["nodes"]
        ) == (4 * 2 * TIES_EACH * 2 * TIES_EACH)
    assert slowest < PROMPT


async def test_every_answer_carries_its_cost_and_the_keys_points(served: Served) -> None:
    response = await served.post(
        '{ customer(id: "H1") { id socialTies(first: 99) { nodes { type } } } }'
    )
    body = response.json()
    # a customer, a page of ties, 99 ties
    assert body["extensions"]["cost"]["requested"] == 1 + 1 + 99 * 1
    assert int(response.headers["x-ratelimit-limit"]) == 1_000_000
    remaining = int(response.headers["x-ratelimit-remaining"])
    assert remaining == body["extensions"]["cost"]["remaining"] <= 1_000_000 - 101
    assert int(response.headers["x-ratelimit-reset"]) >= int(time.time())


async def test_a_login_flood_is_limited_per_address(served: Served) -> None:
    # given 60 unknown keys sent as fast as possible from one address
    async def flood() -> list[httpx.Response]:
        return [await served.post("{ __typename }", key=f"crm_{i:012d}_{'x' * 43}")
                for i in range(60)]  # fmt: skip

    responses, slowest = await asyncio.wait_for(while_probing_unauthenticated(served, flood()),
                                                60)  # fmt: skip
    # then the first 20 are 401 and the rest 429 with Retry-After, never a store look-up more
    statuses = [r.status_code for r in responses]
    assert statuses[:20] == [401] * 20
    assert set(statuses[20:]) == {429}, statuses
    assert int(responses[-1].headers["retry-after"]) >= 1
    assert responses[-1].json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert slowest < PROMPT
    # and a key that worked before still works from the same address
    answer = (await served.post("{ __typename }")).json()
    assert answer["data"] == {"__typename": "Query"}


async def while_probing_unauthenticated(
    served: Served, attack: Awaitable[Any]
) -> tuple[Any, float]:
    """As `while_probing`, with `/healthz` only: the flood blocks this address's keys."""
    slowest = 0.0
    done = asyncio.Event()

    async def probe() -> None:
        nonlocal slowest
        while not done.is_set():
            started = time.perf_counter()
            assert (await served.client.get("/healthz")).status_code == 200
            slowest = max(slowest, time.perf_counter() - started)
            await asyncio.sleep(0.05)

    prober = asyncio.create_task(probe())
    try:
        answer = await attack
    finally:
        done.set()
        await prober
    return answer, slowest


async def test_production_gives_away_no_schema_and_no_path(served: Served) -> None:
    introspection = (await served.post("{ __schema { types { name } } }")).json()
    assert introspection["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "data" not in introspection or introspection["data"] is None
    suggestion = (await served.post('{ custmer(id: "H1") { id } }')).json()
    assert "Did you mean" not in str(suggestion) and "customer" not in str(suggestion)
    ready = (await served.client.get("/readyz")).json()
    assert ready["status"] == "ready" and "/" not in str(ready) and "127.0.0.1" not in str(ready)
    two = (await served.post("query A { __typename } query B { __typename }")).json()
    assert two["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "operationName" in two["errors"][0]["message"]
