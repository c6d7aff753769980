"""`python -m bench webhooks`: the API's write latency (p50, p99 of `upsertCustomers`, one
customer a request, one client) with 0 webhook subscriptions, then with 10 (nine live receivers
on 127.0.0.1 and one dead URL: a port that accepts connections and never answers, so every
delivery to it waits for the time-out), side by side in one run on one store:

1. `crm-graph serve`, no subscription;
2. the same serve with 10 subscriptions, its own delivery worker delivering them;
3. a serve with `CRM_GRAPH_WEBHOOKS=off` and the worker in a process of its own beside it
   (`crm-graph webhooks run`), the same 10 subscriptions;
4. the same, the worker started under `nice -n 19` (the scheduler then gives the API's process
   the CPU first when both want it).

On the embedded FalkorDB (default) or any `CRM_GRAPH_STORE` value (`--store`, e.g. a Neo4j URI;
it wipes that database, which it refuses to do to one holding a graph without `--wipe`).

The deliveries of each phase with subscriptions are counted: every live receiver must get every
event of the phase (the bench waits for them after the phase, and says how long that took)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.server import (
    REPO,
    _cli,
    api_server,
    cpu_seconds,
    create_admin_key,
    stop_process,
    wait_ready,
)

UPSERT = """
mutation($input: [CustomerInput!]!) { upsertCustomers(input: $input) { __typename } }
"""
ADD = """
mutation($input: AddWebhookInput!) {
  addWebhook(input: $input) { __typename ... on AddWebhookSuccess { webhook { id } } }
}
"""
LIVE = 9
ENV = {"CRM_GRAPH_WEBHOOK_TIMEOUT": "10", "CRM_GRAPH_WEBHOOK_POLL": "0.5"}
PHASES = (
    "0 webhooks",
    "10 webhooks, worker in serve",
    "10 webhooks, worker process",
    "10 webhooks, worker process nice 19",
)


class NotTheBenchsGraph(RuntimeError):
    """The external store holds a graph: the bench wipes it only with --wipe."""


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
    phases: dict[str, Phase]
    delivered: dict[str, list[int]]
    """Per phase with subscriptions, per receiver (the dead one last), the events it got since
    the subscriptions were made, once the phase's deliveries were waited for."""
    expected: dict[str, int]
    drain_seconds: dict[str, float]
    cpu_seconds: dict[str, dict[str, float]]
    """Per phase, the CPU seconds the serve and the worker process used during its writes."""


def _cpu(pid: int | None) -> float:
    return cpu_seconds(pid) or 0.0


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


@contextlib.contextmanager
def _worker(data_dir: Path, log_path: Path, store: str | None, nice: int) -> Iterator[int]:
    """`crm-graph webhooks run` as a process of its own (under `nice` when not 0); its pid."""
    command = _cli(data_dir, "webhooks", "run", store=store)
    if nice:
        command = ["nice", "-n", str(nice), *command]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, **ENV}, cwd=REPO, start_new_session=True,
        )  # fmt: skip
    try:
        yield process.pid
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        stop_process(process)


async def _empty_store(store: str, allow_wipe: bool) -> None:
    from crm_graph.graph.settings import parse_store
    from crm_graph.graph.store import open_store

    settings = parse_store(store)
    opened = await open_store(settings, bootstrap=False)
    try:
        held = await opened.read("MATCH (n) RETURN count(n) AS n")
        if held and held[0]["n"] and not allow_wipe:
            raise NotTheBenchsGraph(
                f"{settings.description} holds {held[0]['n']} nodes: run again with --wipe to "
                "let the bench delete them"
            )
        await opened.delete_graph()  # type: ignore[attr-defined]
    finally:
        await opened.close()


async def run(
    work: Path, writes: int, warmup: int, *, store: str | None = None, allow_wipe: bool = False
) -> Result:
    external = store not in (None, "embedded")
    if external:
        await _empty_store(str(store), allow_wipe)
    else:
        store = None
    data_dir = work / f"webhooks-{time.strftime('%Y%m%dT%H%M%S')}"
    _, key = await asyncio.to_thread(create_admin_key, data_dir, "bench webhooks", store=store)
    receivers = [_Receiver() for _ in range(LIVE)] + [_Receiver(dead=True)]
    for receiver in receivers:
        await receiver.start()
    phases: dict[str, Phase] = {}
    delivered: dict[str, list[int]] = {}
    expected: dict[str, int] = {}
    drains: dict[str, float] = {}
    cpu: dict[str, dict[str, float]] = {}
    sent = 0

    async def phase(c: httpx.AsyncClient, name: str, prefix: str, serve: int,
                    worker: int | None) -> None:  # fmt: skip
        nonlocal sent
        await _writes(c, key, f"warm-{prefix}", warmup)
        before = (_cpu(serve), _cpu(worker))
        phases[name] = await _writes(c, key, prefix, writes)
        cpu[name] = {"serve": _cpu(serve) - before[0], "worker": _cpu(worker) - before[1]}
        if name == PHASES[0]:
            return
        sent += warmup + writes
        expected[name] = sent
        started = time.perf_counter()
        deadline = started + 300
        while time.perf_counter() < deadline and any(r.got < sent for r in receivers[:LIVE]):
            await asyncio.sleep(0.1)
        drains[name] = time.perf_counter() - started
        delivered[name] = [r.got for r in receivers]

    try:
        with api_server(data_dir, work / "webhooks-serve.log", env=ENV, store=store) as server:
            await wait_ready(server)
            pid = server.process.pid
            async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=60) as c:
                await phase(c, PHASES[0], "a-", pid, None)
                for receiver in receivers:
                    variables = {"input": {"url": f"http://127.0.0.1:{receiver.port}/hook",
                                           "events": ["customer.created"]}}  # fmt: skip
                    added = await c.post("/graphql", json={"query": ADD, "variables": variables},
                                         headers={"Authorization": f"Bearer {key}"})  # fmt: skip
                    if added.json()["data"]["addWebhook"]["__typename"] != "AddWebhookSuccess":
                        raise RuntimeError(f"addWebhook failed: {added.text[:300]}")
                await phase(c, PHASES[1], "b-", pid, None)
        off = {**ENV, "CRM_GRAPH_WEBHOOKS": "off"}
        with api_server(data_dir, work / "webhooks-serve2.log", env=off, store=store) as server:
            await wait_ready(server)
            pid = server.process.pid
            async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=60) as c:
                for name, prefix, nice in ((PHASES[2], "c-", 0), (PHASES[3], "d-", 19)):
                    log = work / f"webhooks-worker-{prefix[0]}.log"
                    with _worker(data_dir, log, store, nice) as worker:
                        await phase(c, name, prefix, pid, worker)
    finally:
        for receiver in receivers:
            await receiver.stop()
    return Result(writes, phases, delivered, expected, drains, cpu)
