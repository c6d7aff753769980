"""`python -m bench hostile`: the p99 of normal traffic (the customer 360) while hostile
clients attack, against its p99 without them, in one run on one `crm-graph serve`.

Two phases of `seconds` each, the same normal clients and customers in both: first alone, then
beside one client per attack of issue 15, each sending its attack in a loop: the fragment
fan-out (a character changed each time), `knows` nested 4 deep (within the cost: the statement
timeout stops it), socialTies amplified under a neighbourhood (refused for its cost), a flood of
unknown keys, and a heavy request within the limits (50 customers' 360s, about 60,000 points).
Rate limits by points are off (`CRM_GRAPH_RATE_POINTS=0`): the attackers are bounded by the cost
maximum, the statement timeout and the failed-authentication limit only, the harder case.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.api import Phase, graphql_360, measure
from bench.business import bench_settings, customer_ids, ensure_loaded
from bench.http import HttpClient
from bench.server import api_server, create_admin_key, wait_ready
from crm_graph.graph.store import open_store

_counter = itertools.count()


def _fan_out() -> dict[str, Any]:
    fragments = [f"fragment F{i} on Customer {{ ...F{i + 1} ...F{i + 1} }}" for i in range(19)]
    fragments.append("fragment F19 on Customer { id name }")
    text = "query($id: ID!) { customer(id: $id) { ...F0 } }\n" + "\n".join(fragments)
    return {"query": text + f" # {next(_counter)}", "variables": {"id": "C00000001"}}


def _knows() -> dict[str, Any]:
    where: dict[str, Any] = {"country": {"eq": "ZZ"}}
    for _ in range(4):
        where = {"knows": where}
    return {
        "query": "query($w: CustomerFilter) { customers(where: $w, first: 100) { nodes { id } } }",
        "variables": {"w": where},
    }


_TIES = (
    "socialTies(first: 100) { nodes { customer { socialTies(first: 100) { nodes { customer { id } "
    "} } } } }"
)
"""Ties of ties, pages of 100, under each member: two levels (a third would pass the depth
limit of 10, refused before its cost is worked out)."""
_AMPLIFIED = " ".join(
    f'a{i}: neighbourhood(id: "C00000001", depth: 3, limit: 500) '
    f"{{ members {{ customer {{ {_TIES} }} }} }}"
    for i in range(4)
)
_HEAVY = (
    "{ customers(first: 50) { nodes { id name email totalSpend orderCount "
    "transactions(first: 5) { nodes { id total lines { nodes { quantity product { name } } } } } "
    "interactions(first: 10) { nodes { type at } } socialTies { nodes { type customer { id name } } } } } }"  # noqa: E501
)

ATTACKS: dict[str, Callable[[], dict[str, Any]]] = {
    "fragment fan-out": _fan_out,
    "knows 4 deep": _knows,
    "amplified ties": lambda: {"query": "{ " + _AMPLIFIED + " }"},
    "heavy within limits": lambda: {"query": _HEAVY},
}


@dataclass
class AttackTally:
    sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    slowest_s: float = 0.0


@dataclass
class HostileResult:
    customers_in_graph: int
    alone: Phase
    attacked: Phase
    attacks: dict[str, AttackTally]

    @property
    def p99_ratio(self) -> float:
        base = self.alone.percentile(0.99)
        return self.attacked.percentile(0.99) / base if base else float("inf")


async def _attacker(
    client: HttpClient, key: str | None, make: Callable[[], dict[str, Any]], tally: AttackTally,
    until: float,
) -> None:  # fmt: skip
    while time.perf_counter() < until:
        body = make()
        started = time.perf_counter()
        headers = {"authorization": f"Bearer {key or f'crm_{tally.sent:012d}_' + 'x' * 43}"}
        try:
            reply = await client.post_json("/graphql", body, headers)
            if reply.status != 200:
                outcome = f"HTTP {reply.status}"
            else:
                errors = reply.json().get("errors") or []
                outcome = errors[0]["extensions"]["code"] if errors else "answered"
        except Exception as e:  # counted, the run goes on
            outcome = type(e).__name__
        tally.sent += 1
        tally.outcomes[outcome] += 1
        tally.slowest_s = max(tally.slowest_s, time.perf_counter() - started)


async def run(
    work: Path, folder: Path, customers: int, *, clients: int, seconds: float, warmup: int,
    store: str | None = None, allow_wipe: bool = False,
) -> HostileResult:  # fmt: skip
    """On the embedded store `work/api-store-<customers>` (the one `bench api` loads), or on
    `store` (a `CRM_GRAPH_STORE` value such as a Neo4j URI), loaded from `folder` unless it
    already holds it."""
    settings = bench_settings(store, work / f"api-store-{customers}")
    external = settings.kind != "embedded"
    store_dir = work / f"api-{settings.kind}-{customers}" if external else settings.data_dir
    graph = await open_store(settings)
    try:
        await ensure_loaded(graph, folder, store_dir, work / f"api-{customers}.rejects.csv",
                            external=external, allow_wipe=allow_wipe)  # fmt: skip
        ids = await customer_ids(graph)
    finally:
        await graph.close()
    data_dir = settings.data_dir
    _, key = await asyncio.to_thread(create_admin_key, data_dir, "bench hostile", store=store)
    _, attacker_key = await asyncio.to_thread(
        create_admin_key, data_dir, "bench attacker", store=store
    )
    log = work / f"hostile-{customers}-server.log"
    with api_server(data_dir, log, env={"CRM_GRAPH_RATE_POINTS": "0"}, store=store) as server:
        await wait_ready(server)
        async with HttpClient(server.url, timeout=120) as client:
            normal: Callable[[str], Awaitable[Any]] = lambda i: graphql_360(client, key, i)  # noqa: E731
            await measure(normal, ids, clients=1, seconds=30, max_requests=warmup, seed=10_000)
            print(f"  normal traffic alone: {clients} clients, {seconds:g}s ...", flush=True)
            alone = await measure(normal, ids, clients=clients, seconds=seconds)
            print(f"  normal traffic with {len(ATTACKS) + 1} attackers ...", flush=True)
            tallies = {name: AttackTally() for name in [*ATTACKS, "unknown keys"]}
            until = time.perf_counter() + seconds
            async with HttpClient(server.url, timeout=120) as hostile:
                attackers = [
                    asyncio.create_task(
                        _attacker(hostile, attacker_key, make, tallies[name], until)
                    )
                    for name, make in ATTACKS.items()
                ]
                attackers.append(asyncio.create_task(_attacker(
                    hostile, None, lambda: {"query": "{ __typename }"},
                    tallies["unknown keys"], until,
                )))  # fmt: skip
                attacked = await measure(normal, ids, clients=clients, seconds=seconds)
                for task in attackers:
                    with contextlib.suppress(Exception):
                        await task
        if server.process.poll() is not None:
            raise RuntimeError(f"the API server died during the run:\n{server.log_tail()}")
    return HostileResult(len(ids), alone, attacked, tallies)
