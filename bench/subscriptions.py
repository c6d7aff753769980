"""`python -m bench subscriptions --subscribers 0,10,100 --writes 200`: what GraphQL
subscriptions cost and how fast they deliver, side by side in one run, on a real `crm-graph serve`
(embedded FalkorDB, or `--store`).

For each number of subscribers N (each its own WebSocket, an admin key, `events`), one client
writes `--writes` customers one after the other (`upsertCustomers` over HTTP) and the bench
reports: the write's p50/p99 as that client sees it (does following the outbox slow the API?),
the delay from sending a write to each subscriber receiving its event, p50/p99 (the poll
interval, `CRM_GRAPH_EVENT_POLL_SECONDS`, bounds most of it), and whether every subscriber
received every event once and in order. One poller serves all subscribers, so the store's load
does not grow with N; the delivery delay grows only with the fan-out's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from bench.server import api_server, create_admin_key, wait_ready

PROTOCOL = Subprotocol("graphql-transport-ws")
EVENTS = "subscription { events(types: [CUSTOMER_CREATED]) { sequence customerIds } }"
UPSERT = "mutation($input: [CustomerInput!]!) { upsertCustomers(input: $input) { __typename } }"


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def _subscriber(url: str, key: str) -> ClientConnection:
    ws = await connect(url, subprotocols=[PROTOCOL], max_queue=None, open_timeout=60)
    await ws.send(json.dumps({"type": "connection_init",
                              "payload": {"authorization": f"Bearer {key}"}}))  # fmt: skip
    ack = json.loads(await ws.recv())
    if ack["type"] != "connection_ack":
        raise RuntimeError(f"not acknowledged: {ack}")
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}))
    return ws


async def _receive(ws: ClientConnection, count: int, received: list[tuple[str, float]]) -> None:
    while len(received) < count:
        message = json.loads(await ws.recv())
        if message["type"] == "next":
            if message["payload"].get("errors"):
                raise RuntimeError(f"subscription ended: {message['payload']['errors']}")
            (customer,) = message["payload"]["data"]["events"]["customerIds"]
            received.append((customer, time.perf_counter()))
        elif message["type"] != "ping":
            raise RuntimeError(f"unexpected message: {message}")


async def phase(
    http_url: str, key: str, subscribers: int, writes: int, label: str
) -> dict[str, Any]:
    """One measurement with `subscribers` subscribers: `writes` customers written in turn."""
    ws_url = http_url.replace("http://", "ws://") + "/graphql"
    sockets = [await _subscriber(ws_url, key) for _ in range(subscribers)]
    received: list[list[tuple[str, float]]] = [[] for _ in sockets]
    readers = [asyncio.create_task(_receive(ws, writes, got))
               for ws, got in zip(sockets, received, strict=True)]  # fmt: skip
    await asyncio.sleep(1.0)  # the subscriptions register (a few poll intervals)
    sent: dict[str, float] = {}
    write_ms: list[float] = []
    async with httpx.AsyncClient(base_url=http_url, trust_env=False, timeout=60) as client:
        headers = {"Authorization": f"Bearer {key}"}
        for i in range(writes):
            customer = f"{label}-{i}"
            started = time.perf_counter()
            sent[customer] = started
            answer = await client.post(
                "/graphql",
                headers=headers,
                json={"query": UPSERT, "variables": {"input": [{"id": customer, "name": "Bench"}]}},
            )
            write_ms.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
    try:
        await asyncio.wait_for(asyncio.gather(*readers), timeout=120)
    finally:
        for ws in sockets:
            await ws.close()
    order = [f"{label}-{i}" for i in range(writes)]
    delays = [(at - sent[c]) * 1000 for got in received for c, at in got]
    return {
        "subscribers": subscribers,
        "writes": writes,
        "write_ms": {"p50": _percentile(write_ms, 0.5), "p99": _percentile(write_ms, 0.99)},
        "delivery_ms": {"p50": _percentile(delays, 0.5), "p99": _percentile(delays, 0.99)},
        "all_received_once_in_order": all([c for c, _ in got] == order for got in received),
    }


async def run(work: Path, counts: list[int], writes: int, store: str | None) -> dict[str, Any]:
    data_dir = work / "data"
    _, key = create_admin_key(data_dir, "bench subscriptions", store=store)
    # one admin key holds every subscriber: the per-key cap (10 by default) raised for the bench
    env = {"CRM_GRAPH_SUBSCRIPTIONS_PER_KEY": str(max(counts, default=1) + 1)}
    with api_server(data_dir, work / "serve.log", env=env, store=store) as server:
        await wait_ready(server)
        await phase(server.url, key, 1, 20, "warmup")
        phases = [await phase(server.url, key, n, writes, f"n{n}") for n in counts]
    return {"bench": "subscriptions", "store": store or "embedded", "phases": phases}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench subscriptions", description=__doc__)
    parser.add_argument(
        "--subscribers", default="0,10,100",
        help="numbers of subscribers, comma-separated, measured in turn",
    )  # fmt: skip
    parser.add_argument("--writes", type=int, default=200, help="customers written per phase")
    parser.add_argument(
        "--store", default=None,
        help="a CRM_GRAPH_STORE value (default: an embedded FalkorDB under --work); the bench "
        "writes customers in it",
    )  # fmt: skip
    parser.add_argument("--work", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args(argv)
    try:
        counts = [int(n) for n in args.subscribers.split(",") if n.strip()]
    except ValueError:
        parser.error(f"--subscribers: whole numbers separated by commas, got {args.subscribers!r}")
    if not counts or min(counts) < 0 or args.writes < 1:
        parser.error("--subscribers needs numbers ≥ 0 and --writes at least 1")
    with tempfile.TemporaryDirectory(prefix="bench-subscriptions-") as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(run(work, counts, args.writes, args.store))
    print(json.dumps(result, indent=2))
    for p in result["phases"]:
        print(f"{p['subscribers']:>5} subscribers: write p50 {p['write_ms']['p50']} ms "
              f"p99 {p['write_ms']['p99']} ms; delivery p50 {p['delivery_ms']['p50']} ms "
              f"p99 {p['delivery_ms']['p99']} ms; every event once, in order: "
              f"{p['all_received_once_in_order']}", file=sys.stderr)  # fmt: skip
    return 0 if all(p["all_received_once_in_order"] for p in result["phases"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
