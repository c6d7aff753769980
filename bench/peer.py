"""`python -m bench peer --store neo4j://...`: crm-graph against the Neo4j GraphQL Library, the
peer on its own engine, serving the same customer 360 from the same Neo4j database.

- **the peer**: `@neo4j/graphql` 7 on graphql-yoga (Node), `bench/peer_server/server.mjs`,
  installed from npm (`bench/peer_server/package.json`) into `<work>/peer/` on first use (never
  into the repository), one Node process, authentication on: a JWT (HS256) the library checks
  on every request with its `@authentication`. The bench signs one token for the run, and checks
  that the peer refuses a request without it and one signed with another secret.
- **crm-graph**: `crm-graph serve` on the same database, one uvicorn process, an admin API key.
- **raw Cypher**: the bench's one-statement 360 (bench/api.py), the engine's own round trip.

First the answers are compared for `--check` customers (profile, spend, order count, first
and last purchase, the last 10 orders with their lines, interaction types, social ties: money
to the cent, instants to the millisecond, lists as sets where the two APIs order ties
differently); any difference stops the run. Then `--blocks` alternating blocks: in each, every
side runs one client for `--seconds`, then `--clients` clients for `--seconds`, the sides in a
rotating order, with the same client (bench/http.py) and the same customer ids. Latencies and
requests are pooled over the blocks; CPU per request is read from /proc for the bench, each
server and Neo4j.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.api import GRAPHQL_360, Phase, graphql_360, measure, raw_360, warm_up
from bench.business import bench_settings, customer_ids, ensure_loaded
from bench.http import HttpClient
from bench.server import (
    ApiServer,
    api_server,
    cpu_probe,
    create_admin_key,
    free_port,
    listening_pid,
    stop_process,
    wait_ready,
)
from crm_graph.api.auth.keys import revoke_key
from crm_graph.graph.errors import StoreError
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import open_store

HERE = Path(__file__).resolve().parent
PEER_FILES = ("package.json", "server.mjs")

PEER_360 = """
query Peer360($id: ID!) {
  customers(where: { id: { eq: $id } }) {
    id name email phone city country
    transactionsConnection {
      aggregate { count { nodes } node { total { sum } at { min max } } }
    }
    transactions(sort: [{ at: DESC }, { id: DESC }], limit: 10) {
      id at total
      linesConnection { edges { properties { quantity amount } node { id name category } } }
    }
    interactions(sort: [{ at: DESC }, { id: DESC }], limit: 50) { type }
    knows { id name }
    referred { id name }
    family { id name }
    colleague { id name }
  }
}
"""
"""The library's form of bench/api.py's `GRAPHQL_360`: the same fields and the same limits."""


class PeerError(RuntimeError):
    """The peer could not be installed or started, or its answers differ from crm-graph's."""


# -- installing and running the peer -----------------------------------------------------------


def install_peer(folder: Path) -> Path:
    """`bench/peer_server/` copied into `folder` and its npm packages installed there (again
    only when package.json changed). Returns the folder."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise PeerError("the peer needs Node.js 20 or later and npm on the PATH")
    folder.mkdir(parents=True, exist_ok=True)
    wanted = (HERE / "peer_server" / "package.json").read_bytes()
    installed = folder / ".installed-package.json"
    for name in PEER_FILES:
        shutil.copyfile(HERE / "peer_server" / name, folder / name)
    modules = folder / "node_modules"
    if installed.exists() and installed.read_bytes() == wanted and modules.exists():
        return folder
    print(f"installing the peer (npm: @neo4j/graphql, graphql-yoga) into {folder} ...", flush=True)
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise PeerError(f"npm install failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    installed.write_bytes(wanted)
    return folder


def peer_versions(folder: Path) -> dict[str, str]:
    found = {}
    for name in ("@neo4j/graphql", "graphql-yoga", "neo4j-driver", "graphql"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            package = json.loads((folder / "node_modules" / name / "package.json").read_text())
            found[name] = package["version"]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    found["node"] = node.stdout.strip()
    return found


@contextlib.contextmanager
def peer_server(folder: Path, settings: StoreSettings, secret: str, log_path: Path
                ) -> Iterator[ApiServer]:  # fmt: skip
    """The peer as a subprocess of its own session, stopped on exit whatever happens."""
    port = free_port()
    env = {
        **os.environ,
        "NEO4J_URL": settings.url or "",
        "NEO4J_USER": settings.username or "",
        "NEO4J_PASSWORD": settings.password or "",
        "PEER_PORT": str(port),
        "PEER_JWT_SECRET": secret,
        "NODE_ENV": "production",
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["node", "server.mjs"], cwd=folder, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    try:
        yield ApiServer(process, f"http://127.0.0.1:{port}", log_path)
    finally:
        stop_process(process, grace=10)


async def wait_listening(server: ApiServer, timeout: float = 60.0) -> None:
    """Wait until the peer answers a POST to /graphql (401 without a token is an answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise PeerError(f"the peer exited ({server.process.returncode}):\n{server.log_tail()}")
        with contextlib.suppress(Exception):
            async with HttpClient(server.url, timeout=5) as client:
                await client.post_json("/graphql", {"query": "{ __typename }"})
                return
        await asyncio.sleep(0.2)
    raise PeerError(f"the peer did not answer within {timeout:.0f}s:\n{server.log_tail()}")


def jwt_hs256(secret: str, claims: dict[str, Any]) -> str:
    """A compact JWS (HS256) of `claims`: what the peer's @authentication verifies."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = part(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{part(signature)}"


async def peer_360(client: HttpClient, token: str | None, customer_id: str) -> dict[str, Any]:
    """The peer's customer (no Authorization header when `token` is None); raises `LookupError`
    on any error or no customer."""
    response = await client.post_json(
        "/graphql",
        {"query": PEER_360, "variables": {"id": customer_id}},
        {"authorization": f"Bearer {token}"} if token is not None else None,
    )
    if response.status != 200:
        raise LookupError(f"HTTP {response.status}: {response.text[:300]}")
    body = response.json()
    if body.get("errors"):
        raise LookupError(f"GraphQL errors: {json.dumps(body['errors'])[:300]}")
    found = (body.get("data") or {}).get("customers") or []
    if len(found) != 1:
        raise LookupError(f"the peer found {len(found)} customers with id {customer_id!r}")
    return found[0]  # type: ignore[no-any-return]


# -- comparing answers -------------------------------------------------------------------------


def _cents(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


def _millis(value: Any) -> int | None:
    """An instant as epoch milliseconds: crm-graph answers ISO 8601, the peer a BigInt."""
    if value is None:
        return None
    if isinstance(value, str) and not value.lstrip("-").isdigit():
        return round(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    return int(value)


def _number(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value)).normalize()


def normal_crm(customer: dict[str, Any]) -> dict[str, Any]:
    """crm-graph's 360 in the comparable form."""
    return {
        "profile": [customer[k] for k in ("id", "name", "email", "phone", "city", "country")],
        "spend": _cents(customer["totalSpend"]),
        "orders": customer["orderCount"],
        "first": _millis(customer["firstPurchaseAt"]),
        "last": _millis(customer["lastPurchaseAt"]),
        "transactions": [
            _order(t, [(li["product"], li["quantity"], li["amount"]) for li in t["lines"]["nodes"]])
            for t in customer["transactions"]["nodes"]
        ],
        "interactions": Counter(str(i["type"]).lower() for i in customer["interactions"]["nodes"]),
        "ties": sorted(
            (str(t["type"]).upper(), t["customer"]["id"], t["customer"]["name"])
            for t in customer["socialTies"]["nodes"]
        ),
    }


def _order(t: dict[str, Any], lines: list[tuple[dict[str, Any], Any, Any]]) -> tuple[Any, ...]:
    return (
        t["id"],
        _millis(t["at"]),
        _cents(t["total"]),
        sorted(
            (p["id"], p["name"], p["category"], _number(quantity), _cents(amount))
            for p, quantity, amount in lines
        ),
    )


def normal_peer(customer: dict[str, Any]) -> dict[str, Any]:
    """The peer's 360 in the comparable form."""
    aggregate = customer["transactionsConnection"]["aggregate"]
    orders = aggregate["count"]["nodes"]
    node = aggregate["node"]
    return {
        "profile": [customer[k] for k in ("id", "name", "email", "phone", "city", "country")],
        "spend": _cents(node["total"]["sum"] or 0) if orders else Decimal("0.00"),
        "orders": orders,
        "first": _millis(node["at"]["min"]),
        "last": _millis(node["at"]["max"]),
        "transactions": [
            _order(
                t,
                [
                    (e["node"], e["properties"]["quantity"], e["properties"]["amount"])
                    for e in t["linesConnection"]["edges"]
                ],
            )
            for t in customer["transactions"]
        ],
        "interactions": Counter(str(i["type"]).lower() for i in customer["interactions"]),
        "ties": sorted(
            (tie_type.upper(), other["id"], other["name"])
            for tie_type in ("knows", "referred", "family", "colleague")
            for other in customer[tie_type]
        ),
    }


def differences(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    return [
        f"{name}: crm-graph {ours[name]!r}, peer {theirs[name]!r}"
        for name in ours
        if ours[name] != theirs[name]
    ]


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    server_pid: int | None
    sequential: Phase = field(default_factory=lambda: Phase(1))
    concurrent: Phase = field(default_factory=lambda: Phase(0))

    def summary(self) -> dict[str, Any]:
        return {
            "side": self.name,
            "sequential": self.sequential.summary(),
            "concurrent": self.concurrent.summary(),
        }


def _pool(into: Phase, phase: Phase) -> None:
    """Add a block's phase to the pooled one (CPU per request weighted by requests)."""
    total = into.requests + phase.requests
    if total:
        names = set(into.cpu_ms_per_request) | set(phase.cpu_ms_per_request)
        into.cpu_ms_per_request = {
            name: (into.cpu_ms_per_request.get(name, 0.0) * into.requests
                   + phase.cpu_ms_per_request.get(name, 0.0) * phase.requests) / total
            for name in names
        }  # fmt: skip
    into.clients = phase.clients
    into.requests = total
    into.errors += phase.errors
    into.seconds += phase.seconds
    into.latencies_ms.extend(phase.latencies_ms)
    into.first_error = into.first_error or phase.first_error


@dataclass
class PeerResult:
    customers_in_graph: int
    checked: int
    versions: dict[str, str]
    sides: list[Side]


async def run(
    work: Path, folder: Path, customers: int, *, store: str, clients: int, seconds: float,
    blocks: int, warmup: int, check: int, allow_wipe: bool = False,
) -> PeerResult:  # fmt: skip
    settings = bench_settings(store, work / f"api-store-{customers}")
    if settings.kind != "neo4j":
        raise PeerError("the peer serves Neo4j only: pass --store neo4j://user:pass@host:port")
    peer_folder = install_peer(work / "peer")
    versions = peer_versions(peer_folder)
    store_dir = work / f"api-{settings.kind}-{customers}"
    graph = await open_store(settings)
    try:
        await ensure_loaded(graph, folder, store_dir, work / f"api-{customers}.rejects.csv",
                            external=True, allow_wipe=allow_wipe)  # fmt: skip
        ids = await customer_ids(graph)
        key_id, key = await asyncio.to_thread(create_admin_key, settings.data_dir, store=store)
        secret = secrets.token_urlsafe(32)
        token = jwt_hs256(secret, {"sub": "bench", "iat": int(time.time())})
        try:
            with (
                api_server(settings.data_dir, work / f"peer-{customers}-crm-graph.log",
                           store=store) as ours,
                peer_server(peer_folder, settings, secret,
                            work / f"peer-{customers}-peer.log") as theirs,
            ):  # fmt: skip
                await wait_ready(ours)
                await wait_listening(theirs)
                sides = await _compare_and_measure(
                    graph, settings, ours, key, theirs, token, ids,
                    clients=clients, seconds=seconds, blocks=blocks, warmup=warmup, check=check,
                )  # fmt: skip
        finally:
            with contextlib.suppress(StoreError):
                await revoke_key(graph, key_id)
        return PeerResult(len(ids), min(check, len(ids)), versions, sides)
    finally:
        await graph.close()


async def _compare_and_measure(
    graph: Any, settings: StoreSettings, ours: ApiServer, key: str, theirs: ApiServer, token: str,
    ids: list[str], *, clients: int, seconds: float, blocks: int, warmup: int, check: int,
) -> list[Side]:  # fmt: skip
    engine = listening_pid(urlsplit(settings.url or "").port or 7687)
    async with HttpClient(ours.url, timeout=30) as crm, HttpClient(theirs.url, timeout=30) as peer:
        for wrong in (None, jwt_hs256("not the secret", {"sub": "bench"})):
            with contextlib.suppress(LookupError):
                await peer_360(peer, wrong, ids[0])
                raise PeerError("the peer answered without a valid token: authentication is off")
        print(f"  checking the answers for {min(check, len(ids))} customers ...", flush=True)
        step = max(1, len(ids) // max(1, check))
        for customer_id in ids[::step][:check]:
            found = differences(
                normal_crm(await graphql_360(crm, key, customer_id)),
                normal_peer(await peer_360(peer, token, customer_id)),
            )
            if found:
                raise PeerError(f"customer {customer_id!r}: " + "; ".join(found))
        requests = {
            "raw Cypher": lambda i: raw_360(graph, i),
            "crm-graph": lambda i: graphql_360(crm, key, i),
            "Neo4j GraphQL Library": lambda i: peer_360(peer, token, i),
        }
        sides = [
            Side("raw Cypher", None),
            Side("crm-graph", ours.process.pid),
            Side("Neo4j GraphQL Library", theirs.process.pid),
        ]
        cpu = cpu_probe({"bench": os.getpid(), "crm_graph": ours.process.pid,
                         "peer": theirs.process.pid, "neo4j": engine})  # fmt: skip
        print(f"  warming up ({warmup} requests per side) ...", flush=True)
        for request in requests.values():
            await warm_up(request, ids, warmup)
        for block in range(blocks):
            order = sides[block % 3 :] + sides[: block % 3]
            print(f"  block {block + 1}/{blocks}: " + ", ".join(s.name for s in order), flush=True)
            for n in (1, clients):
                for side in order:
                    phase = await measure(requests[side.name], ids, clients=n, seconds=seconds,
                                          seed=1 + 1000 * block, cpu=cpu)  # fmt: skip
                    _pool(side.sequential if n == 1 else side.concurrent, phase)
        for server in (ours, theirs):
            if server.process.poll() is not None:
                raise PeerError(f"a server died during the run:\n{server.log_tail()}")
    return sides


def report(result: PeerResult, clients: int) -> list[str]:
    n = clients
    lines = [
        f"{result.customers_in_graph:,} customers in the graph; answers identical for "
        f"{result.checked} customers; peer: " + ", ".join(f"{k} {v}" for k, v in
                                                         result.versions.items()),
        f"{'side':<24}{'p50 ms':>9}{'p99 ms':>9}{f'req/s {n} cl.':>14}{f'p50 {n} cl.':>12}"
        f"{f'p99 {n} cl.':>12}{'server CPU ms/req':>19}{'neo4j CPU':>11}{'errors':>8}",
    ]  # fmt: skip
    for side in result.sides:
        seq, con = side.sequential, side.concurrent
        server = {"crm-graph": "crm_graph", "Neo4j GraphQL Library": "peer"}.get(side.name)
        cpu = con.cpu_ms_per_request
        lines.append(
            f"{side.name:<24}{seq.percentile(0.5):>9.2f}{seq.percentile(0.99):>9.2f}"
            f"{con.per_second:>14,.0f}{con.percentile(0.5):>12.2f}{con.percentile(0.99):>12.2f}"
            f"{cpu[server] if server in cpu else float('nan'):>19.2f}"
            f"{cpu.get('neo4j', float('nan')):>11.2f}{seq.errors + con.errors:>8}"
        )
    return lines


def summary(result: PeerResult, args: Any) -> dict[str, Any]:
    return {
        "bench": "peer",
        "customers_in_graph": result.customers_in_graph,
        "answers_checked": result.checked,
        "clients": args.clients,
        "seconds_per_phase": args.seconds,
        "blocks": args.blocks,
        "peer_versions": result.versions,
        "graphql_360": GRAPHQL_360,
        "peer_360": PEER_360,
        "results": [side.summary() for side in result.sides],
    }
