"""`python -m bench webhooks`: the API's write latency (p50, p99 of `upsertCustomers`, one
customer a request, one client) with 0 webhook subscriptions, then with 10 (nine live receivers
on 127.0.0.1 and one dead URL: a port that accepts connections and never answers, so every
delivery to it waits for the time-out), in one run on one `crm-graph serve`, side by side.

The deliveries of the second phase are counted: every live receiver must get every event of the
phase (the bench waits for them after the phase, and says how long that took)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.server import api_server, create_admin_key, wait_ready

UPSERT = """
mutation($input: [CustomerInput!]!) { upsertCustomers(input: $input) { __typename } }
"""
ADD = """
mutation($input: AddWebhookInput!) {
  addWebhook(input: $input) { __typename ... on AddWebhookSuccess { webhook { id } } }
}
"""
LIVE = 9


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class _Receiver:
    """Counts the POSTs it gets, answers 204; `dead`: reads them and never answers."""

    dead: bool = False
    port: int = field(default_factory=_free_port)
    got: int = 0
    server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                     if line.lower().startswith(b"content-length:")), 0,
                )  # fmt: skip
                await reader.readexactly(length)
                if self.dead:
                    await asyncio.sleep(3600)
                self.got += 1
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        writer.close()


@dataclass
class Phase:
    latencies_ms: list[float]

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)


@dataclass
class Result:
    writes: int
    without: Phase
    with_webhooks: Phase
    delivered: list[int]
    """Per receiver (the dead one last), the events it got since the subscriptions were made."""
    expected: int
    drain_seconds: float


async def _writes(client: httpx.AsyncClient, key: str, prefix: str, n: int) -> Phase:
    latencies = []
    for i in range(n):
        body = {"query": UPSERT, "variables": {"input": [{"id": f"{prefix}{i}", "name": "B"}]}}
        start = time.perf_counter()
        response = await client.post("/graphql", json=body,
                                     headers={"Authorization": f"Bearer {key}"})  # fmt: skip
        latencies.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200 or "errors" in response.json():
            raise RuntimeError(f"the write failed: {response.text[:300]}")
    return Phase(latencies)


async def run(work: Path, writes: int, warmup: int) -> Result:
    data_dir = work / f"webhooks-{time.strftime('%Y%m%dT%H%M%S')}"
    _, key = await asyncio.to_thread(create_admin_key, data_dir, "bench webhooks")
    receivers = [_Receiver() for _ in range(LIVE)] + [_Receiver(dead=True)]
    for receiver in receivers:
        await receiver.start()
    env = {"CRM_GRAPH_WEBHOOK_TIMEOUT": "10", "CRM_GRAPH_WEBHOOK_POLL": "0.5"}
    try:
        with api_server(data_dir, work / "webhooks-serve.log", env=env) as server:
            await wait_ready(server)
            async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=60) as c:
                await _writes(c, key, "warm-a-", warmup)
                without = await _writes(c, key, "a-", writes)
                for receiver in receivers:
                    variables = {"input": {"url": f"http://127.0.0.1:{receiver.port}/hook",
                                           "events": ["customer.created"]}}  # fmt: skip
                    added = await c.post("/graphql", json={"query": ADD, "variables": variables},
                                         headers={"Authorization": f"Bearer {key}"})  # fmt: skip
                    if added.json()["data"]["addWebhook"]["__typename"] != "AddWebhookSuccess":
                        raise RuntimeError(f"addWebhook failed: {added.text[:300]}")
                await _writes(c, key, "warm-b-", warmup)
                with_webhooks = await _writes(c, key, "b-", writes)
                expected = warmup + writes
                started = time.perf_counter()
                deadline = started + 300
                while time.perf_counter() < deadline and any(
                    r.got < expected for r in receivers[:LIVE]
                ):
                    await asyncio.sleep(0.1)
                drain = time.perf_counter() - started
                delivered = [r.got for r in receivers]
    finally:
        for receiver in receivers:
            await receiver.stop()
    return Result(writes, without, with_webhooks, delivered, expected, drain)
