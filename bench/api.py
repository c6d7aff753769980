"""Read latency and throughput: the GraphQL customer 360 over HTTP against the raw Cypher round
trip for the same view, same run, same embedded FalkorDB.

Both sides read random customers (the same ids in the same order, drawn from every customer in
the graph) of one business loaded with `load_folder` into one embedded FalkorDB:

- **raw Cypher**: one statement (`CUSTOMER_360` below) returns the whole view: profile, total
  spend and order count, first and last purchase, the last 10 transactions with their line
  items and products, interaction counts by type, social ties with the other customer's id
  and name. It is sent by the bench process with the store's own client (`store.read`), rows
  converted to plain Python. This is the engine's own speed for this view: one round trip,
  nothing else.
- **GraphQL**: `crm-graph serve` runs as a separate process (one uvicorn process, as `serve`
  configures it, with the rate limiter off), and the bench POSTs `GRAPHQL_360` below (the same
  fields, plus the last 50 interactions' types instead of counts) to /graphql with an admin
  key over keep-alive connections on 127.0.0.1; the answer's JSON is parsed. This includes
  everything a client pays: HTTP, the API key look-up in the store, GraphQL parsing,
  validation and execution, the DataLoaders' batched statements, JSON both ways.

The HTTP client is the bench's own (`bench/http.py`: HTTP/1.1 on asyncio streams), for the
GraphQL side and the floor alike. Until 2026-11-22 it was httpx: measured side by side on the
same server, httpx spent 2.3 ms of CPU per 360 request and 1.6 ms per floor request in the
bench process, this client 0.4 and 0.2 ms, and the p50s were 8.0 against 5.7 ms (360) and 2.5
against 1.0 ms (floor). GraphQL and floor figures from before then are not comparable with
later ones; the raw side is unchanged.

For each side: p50 and p99 latency with one client (requests sent one after the other), and
requests per second with `--clients` concurrent clients (asyncio tasks in the bench process,
so at high client counts the bench's own CPU is part of both figures). Each measured phase
lasts `--seconds` (and at most `MAX_REQUESTS` requests); a few hundred unmeasured requests warm
each side up first. The server's resident memory (VmRSS of the uvicorn process, and of the
FalkorDB server for reference) is read after start-up and after the last measurement, and the
CPU time (user + system) the bench, the API server and FalkorDB each spent per answered request
in every phase: unlike latencies, these hardly depend on what else the machine is running.
Everything runs on one machine: the bench's clients, the API server and FalkorDB share its
CPUs (the load average before and after the run is recorded with the results).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.business import bench_settings, customer_ids, ensure_loaded
from bench.http import HttpClient
from bench.server import (
    ApiServer,
    CpuProbe,
    api_server,
    cpu_probe,
    create_admin_key,
    falkordb_pid,
    listening_pid,
    rss_mb,
    wait_ready,
)
from crm_graph.api.auth.keys import revoke_key
from crm_graph.graph.errors import StoreError
from crm_graph.graph.filters import TIES
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore, open_store

MAX_REQUESTS = 1_000_000
"""Upper bound on requests of one measured phase, whatever `--seconds` says."""
WARMUP_SECONDS = 60.0
"""Upper bound on one side's warm-up, whatever the number of warm-up requests."""

CUSTOMER_360 = f"""
MATCH (c:Customer {{id: $id}})
OPTIONAL MATCH (c)-[:PLACED]->(t:Transaction)
WITH c, t ORDER BY t.at DESC, t.id DESC
WITH c, count(t) AS orders, sum(t.total) AS spend, min(t.at) AS firstAt, max(t.at) AS lastAt,
     collect(t)[0..10] AS recent
UNWIND (CASE WHEN size(recent) = 0 THEN [null] ELSE recent END) AS rt
WITH c, orders, spend, firstAt, lastAt, rt,
     CASE WHEN rt IS NULL THEN null ELSE {{
       id: rt.id, at: rt.at, total: rt.total,
       lines: [(rt)-[rl:CONTAINS]->(rp:Product) | {{
         quantity: rl.quantity, amount: rl.amount,
         product: {{id: rp.id, name: rp.name, category: rp.category}}}}]
     }} END AS tx
ORDER BY rt.at DESC, rt.id DESC
WITH c, orders, spend, firstAt, lastAt, collect(tx) AS transactions
OPTIONAL MATCH (c)-[:HAD]->(ci:Interaction)
WITH c, orders, spend, firstAt, lastAt, transactions, ci.type AS itype, count(ci) AS icount
WITH c, orders, spend, firstAt, lastAt, transactions,
     CASE WHEN itype IS NULL THEN null ELSE {{type: itype, count: icount}} END AS ic
WITH c, orders, spend, firstAt, lastAt, transactions, collect(ic) AS interactions
RETURN c.id AS id, c.name AS name, c.email AS email, c.phone AS phone, c.city AS city,
       c.country AS country, coalesce(spend, 0.0) AS totalSpend, orders AS orderCount,
       firstAt AS firstPurchaseAt, lastAt AS lastPurchaseAt, transactions, interactions,
       [(c)-[st:{TIES}]-(so:Customer) | {{type: type(st), id: so.id, name: so.name}}] AS ties
"""
"""The whole 360 view of customer `$id` in one statement: one row, or none for an unknown id.
Each pattern comprehension has its own variables, and maps are projected in a WITH before they
are collected: FalkorDB confuses comprehensions that share a variable name."""

GRAPHQL_360 = """
query Customer360($id: ID!) {
  customer(id: $id) {
    id name email phone city country
    totalSpend orderCount firstPurchaseAt lastPurchaseAt
    transactions(first: 10) { nodes {
      id at total
      lines { nodes { quantity amount product { id name category } } }
    } }
    interactions(first: 50) { nodes { type } }
    socialTies(first: 100) { nodes { type customer { id name } } }
  }
}
"""


# -- the two sides: one request each -----------------------------------------------------------


async def raw_360(store: GraphStore, customer_id: str) -> dict[str, Any]:
    """The raw statement's row for one customer; raises `LookupError` when there is none."""
    rows = await store.read(CUSTOMER_360, {"id": customer_id})
    if len(rows) != 1:
        raise LookupError(f"raw 360 of {customer_id!r} returned {len(rows)} rows")
    return rows[0]


async def graphql_360(client: HttpClient, key: str, customer_id: str) -> dict[str, Any]:
    """`data.customer` of the GraphQL 360; raises `LookupError` on any error or a null customer."""
    response = await client.post_json(
        "/graphql",
        {"query": GRAPHQL_360, "variables": {"id": customer_id}},
        {"authorization": f"Bearer {key}"},
    )
    if response.status != 200:
        raise LookupError(f"HTTP {response.status}: {response.text[:300]}")
    body = response.json()
    if body.get("errors"):
        raise LookupError(f"GraphQL errors: {json.dumps(body['errors'])[:300]}")
    customer = (body.get("data") or {}).get("customer")
    if customer is None:
        raise LookupError(f"GraphQL 360 of {customer_id!r} is null")
    return customer  # type: ignore[no-any-return]


FLOOR_QUERY = "{ __typename }"
"""The cheapest authenticated GraphQL request: what every request pays before its fields."""


async def graphql_floor(client: HttpClient, key: str, customer_id: str) -> dict[str, Any]:
    """`{ __typename }` with the key (the id is ignored): HTTP, the key look-up in the store,
    GraphQL parsing, validation and execution of one trivial field, JSON both ways."""
    response = await client.post_json(
        "/graphql", {"query": FLOOR_QUERY}, {"authorization": f"Bearer {key}"}
    )
    body = response.json() if response.status == 200 else {}
    if body.get("data") != {"__typename": "Query"}:
        raise LookupError(f"HTTP {response.status}: {response.text[:300]}")
    return body  # type: ignore[no-any-return]


Request = Callable[[str], Awaitable[Any]]


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Phase:
    """One measured phase of one side."""

    clients: int
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    first_error: str | None = None
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)
    """CPU time (user + system) each process spent per answered request during the phase."""

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds (0 when there are none)."""
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
        return ordered[rank]

    def summary(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "requests": self.requests,
            "errors": self.errors,
            "seconds": round(self.seconds, 2),
            "requests_per_second": round(self.per_second, 1),
            "p50_ms": round(self.percentile(0.50), 3),
            "p99_ms": round(self.percentile(0.99), 3),
            "cpu_ms_per_request": {k: round(v, 3) for k, v in self.cpu_ms_per_request.items()},
            "first_error": self.first_error,
        }


async def measure(
    request: Request,
    ids: list[str],
    *,
    clients: int,
    seconds: float,
    max_requests: int = MAX_REQUESTS,
    seed: int = 1,
    cpu: CpuProbe | None = None,
) -> Phase:
    """Send requests for random ids from `clients` concurrent tasks until `seconds` have passed
    or `max_requests` were sent. Task i draws its ids from `random.Random(seed + i)`, so two
    sides measured with the same arguments ask for the same customers in the same order."""
    phase = Phase(clients)
    cpu_before = cpu() if cpu else {}
    started = time.perf_counter()
    deadline = started + seconds

    async def client(index: int) -> None:
        rng = random.Random(seed + index)
        while time.perf_counter() < deadline and phase.requests + phase.errors < max_requests:
            customer_id = rng.choice(ids)
            sent = time.perf_counter()
            try:
                await request(customer_id)
            except Exception as e:  # counted and reported; the run goes on
                phase.errors += 1
                phase.first_error = phase.first_error or f"{type(e).__name__}: {e}"
                continue
            phase.latencies_ms.append((time.perf_counter() - sent) * 1000)
            phase.requests += 1

    await asyncio.gather(*(client(i) for i in range(clients)))
    phase.seconds = time.perf_counter() - started
    if cpu and phase.requests:
        cpu_after = cpu()
        phase.cpu_ms_per_request = {
            name: (cpu_after[name] - cpu_before[name]) * 1000 / phase.requests
            for name in cpu_after
            if name in cpu_before
        }
    return phase


async def warm_up(request: Request, ids: list[str], count: int) -> Phase:
    """`count` unmeasured requests (at most `WARMUP_SECONDS`), one client."""
    return await measure(request, ids, clients=1, seconds=WARMUP_SECONDS, max_requests=count,
                         seed=10_000)  # fmt: skip


# -- the run -----------------------------------------------------------------------------------


@dataclass
class SideResult:
    side: str
    sequential: Phase
    concurrent: Phase

    def summary(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "sequential": self.sequential.summary(),
            "concurrent": self.concurrent.summary(),
        }


@dataclass
class ApiBenchResult:
    customers_in_graph: int
    loaded: bool
    raw: SideResult
    graphql: SideResult
    floor: Phase
    """`{ __typename }` with the key, one client, after the two sides: the fixed cost of any
    request through the API."""
    rss_mb: dict[str, float | None]
    engine: str = "falkordb"
    """The store server's name in `rss_mb` and the CPU figures: falkordb or neo4j."""
    audit_each: SideResult | None = None
    """With `--audit-each-request`: the GraphQL side again, on a second server that writes each
    request's audit entry after it (`CRM_GRAPH_AUDIT_FLUSH_SECONDS=0`, as before the entries
    were buffered), measured right after the first server's phases."""

    @property
    def p50_ratio(self) -> float:
        raw = self.raw.sequential.percentile(0.5)
        return self.graphql.sequential.percentile(0.5) / raw if raw else 0.0

    @property
    def floor_ratio(self) -> float:
        raw = self.raw.sequential.percentile(0.5)
        return self.floor.percentile(0.5) / raw if raw else 0.0

    @property
    def throughput_ratio(self) -> float:
        raw = self.raw.concurrent.per_second
        return self.graphql.concurrent.per_second / raw if raw else 0.0


async def measure_sides(
    raw: Request,
    graphql: Request,
    ids: list[str],
    *,
    clients: int,
    seconds: float,
    warmup: int,
    on_phase: Callable[[str], None] | None = None,
    cpu: CpuProbe | None = None,
) -> tuple[SideResult, SideResult]:
    """Warm both sides up, then: raw sequential, GraphQL sequential, raw concurrent, GraphQL
    concurrent (the same ids on both sides). `cpu` probes the processes' CPU time around each
    phase."""
    note = on_phase or (lambda text: None)
    note(f"warming up ({warmup} requests per side)")
    for request in (raw, graphql):
        await warm_up(request, ids, warmup)
    results: dict[tuple[str, int], Phase] = {}
    for n in sorted({1, clients}):
        for side, request in (("raw", raw), ("graphql", graphql)):
            note(f"{side}: {n} client{'s' if n > 1 else ''}, {seconds:g}s")
            results[side, n] = await measure(request, ids, clients=n, seconds=seconds, cpu=cpu)
    return (
        SideResult("raw Cypher", results["raw", 1], results["raw", clients]),
        SideResult("GraphQL /graphql", results["graphql", 1], results["graphql", clients]),
    )


async def run(
    work: Path,
    folder: Path,
    customers: int,
    *,
    clients: int,
    seconds: float,
    warmup: int,
    store: str | None = None,
    allow_wipe: bool = False,
    audit_each: bool = False,
) -> ApiBenchResult:
    """The whole benchmark on the embedded store `work/api-store-<customers>` (or on `store`, a
    `CRM_GRAPH_STORE` value such as a Neo4j URI), loaded from `folder` unless it already holds
    it. `audit_each`: measure the GraphQL side on a second server writing an audit statement
    per request too (`ApiBenchResult.audit_each`)."""
    settings = bench_settings(store, work / f"api-store-{customers}")
    external = settings.kind != "embedded"
    store_dir = work / f"api-{settings.kind}-{customers}" if external else settings.data_dir
    graph = await open_store(settings)
    try:
        loaded = await ensure_loaded(
            graph, folder, store_dir, work / f"api-{customers}.rejects.csv",
            external=external, allow_wipe=allow_wipe,
        )  # fmt: skip
        ids = await customer_ids(graph)
        if not ids:
            raise RuntimeError(f"no customers in {settings.description}")
        key_id, key = await asyncio.to_thread(create_admin_key, settings.data_dir, store=store)
        try:
            with api_server(settings.data_dir, work / f"api-{customers}-server.log",
                            store=store) as server:  # fmt: skip
                await wait_ready(server)
                raw, graphql, floor, rss = await _measure_server(graph, settings, server, key, ids,
                                                          clients, seconds, warmup)  # fmt: skip
            each = None
            if audit_each:
                with api_server(settings.data_dir, work / f"api-{customers}-server-audit.log",
                                env={"CRM_GRAPH_AUDIT_FLUSH_SECONDS": "0"},
                                store=store) as server:  # fmt: skip
                    await wait_ready(server)
                    each = await _measure_graphql(server, settings, key, ids, clients, seconds,
                                                  warmup)  # fmt: skip
        finally:
            with contextlib.suppress(StoreError):
                await revoke_key(graph, key_id)
        return ApiBenchResult(len(ids), loaded, raw, graphql, floor, rss, engine_name(settings),
                              each)  # fmt: skip
    finally:
        await graph.close()


def engine_name(settings: StoreSettings) -> str:
    return "neo4j" if settings.kind == "neo4j" else "falkordb"


def engine_pid(settings: StoreSettings) -> int | None:
    """The store server's process (for its CPU time and memory), when it runs on this machine
    as this user."""
    if settings.kind == "embedded":
        return falkordb_pid(settings.data_dir)
    port = settings.port if settings.kind == "falkordb" else urlsplit(settings.url or "").port
    return listening_pid(port or 7687)


async def _measure_graphql(
    server: ApiServer, settings: StoreSettings, key: str, ids: list[str], clients: int,
    seconds: float, warmup: int,
) -> SideResult:  # fmt: skip
    """The GraphQL side alone (warmed up, then 1 client and `clients` clients), same ids, with
    the processes' CPU time per request."""
    cpu = cpu_probe({"bench": os.getpid(), "api_server": server.process.pid,
                     engine_name(settings): engine_pid(settings)})  # fmt: skip
    async with HttpClient(server.url, timeout=30) as client:
        request: Request = lambda i: graphql_360(client, key, i)  # noqa: E731
        print(f"  second server, an audit statement per request: warming up ({warmup}) ...",
              flush=True)  # fmt: skip
        await warm_up(request, ids, warmup)
        phases = {}
        for n in sorted({1, clients}):
            print(f"  graphql, audit per request: {n} client(s), {seconds:g}s ...", flush=True)
            phases[n] = await measure(request, ids, clients=n, seconds=seconds, cpu=cpu)
    if server.process.poll() is not None:
        raise RuntimeError(f"the API server died during the run:\n{server.log_tail()}")
    return SideResult("GraphQL audit/req", phases[1], phases[clients])


async def _measure_server(
    store: GraphStore, settings: StoreSettings, server: ApiServer, key: str, ids: list[str],
    clients: int, seconds: float, warmup: int,
) -> tuple[SideResult, SideResult, Phase, dict[str, float | None]]:  # fmt: skip
    engine = engine_pid(settings)
    rss: dict[str, float | None] = {
        "api_start": rss_mb(server.process.pid),
        "engine_start": rss_mb(engine),
    }
    async with HttpClient(server.url, timeout=30) as client:
        cpu = cpu_probe(
            {"bench": os.getpid(), "api_server": server.process.pid,
             engine_name(settings): engine}
        )  # fmt: skip
        raw, graphql = await measure_sides(
            lambda i: raw_360(store, i),
            lambda i: graphql_360(client, key, i),
            ids,
            clients=clients,
            seconds=seconds,
            warmup=warmup,
            on_phase=lambda text: print(f"  {text} ...", flush=True),
            cpu=cpu,
        )
        print(f"  floor ({FLOOR_QUERY}): 1 client, {seconds:g}s ...", flush=True)
        floor = await measure(
            lambda i: graphql_floor(client, key, i), ids, clients=1, seconds=seconds, cpu=cpu
        )
    rss["api_end"] = rss_mb(server.process.pid)
    rss["engine_end"] = rss_mb(engine)
    if server.process.poll() is not None:
        raise RuntimeError(f"the API server died during the run:\n{server.log_tail()}")
    return raw, graphql, floor, rss
