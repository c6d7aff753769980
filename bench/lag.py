"""`python -m bench lag`: how long the server's event loop is blocked while the heaviest requests
the limits allow run, measured inside the server's process.

The app (`create_app`, production settings, its lifespan run as `crm-graph serve` runs it) is
served in this process on the bench's store (embedded FalkorDB by default, `--store` for Neo4j),
loaded with the business of `bench api`. A ticker task asks the loop to wake it every 5 ms and
records how late it woke: that lateness is the time the loop spent on something else without
giving a turn, the figure of the promise "no request within the limits blocks the event loop for
more than 50 ms". Meanwhile `--clients` tasks send heavy requests through `httpx.ASGITransport`
(no sockets: the loop's lag is the app's, not a client's); each request is one of `HEAVY`, all
within the cost maximum (their cost, from the answers' `extensions`, is reported).

Two phases in one run, same requests: `before` (the garbage collector walking the whole heap,
as before `freeze_startup_heap`, and lists completed in one go, as before
`LIST_TIME_SLICE_S`), then `now` (the code as it is). Lag is wall-clock time: on a machine
whose CPUs are shared with other work, the process also waits for a CPU, so the load average is
reported with the figures, and so is the CPU time the loop's thread spent while each tick
waited (`time.thread_time`; "CPU ms"): the work that held the loop, whatever the load.

A tick waits for every step the loop found ready in the same turn (asyncio runs them all before
it looks at its timers): with several heavy clients, one step of each. So each step is timed
too ("step ms": the CPU time of one callback, a task's run from one `await` to the next, which
is what one request holds the loop for at a time), and the places where the steps over 10 ms
stopped are counted (the innermost frame outside asyncio: in a store client's reader, the step
ended sending a statement and waiting for its reply; `?`: the task ended).
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.business import bench_settings, ensure_loaded
from crm_graph.api import schema as api_schema
from crm_graph.api.app import create_app
from crm_graph.api.auth.keys import create_key, revoke_key
from crm_graph.api.auth.principal import Role
from crm_graph.api.settings import Settings
from crm_graph.graph.store import open_store

TICK_S = 0.005
"""How often the ticker asks to be woken."""

HEAVY = {
    "50 customers' 360s": (
        "{ customers(first: 50) { nodes { id name email totalSpend orderCount "
        "transactions(first: 5) { nodes { id total lines(first: 100) { nodes { quantity "
        "product { name } } } } } interactions(first: 10) { nodes { type at } } "
        "socialTies(first: 100) { nodes { type customer { id name } } } } } }"
    ),
    "40 customers' orders": (
        "{ customers(first: 40) { nodes { id transactions(first: 10) { nodes { id at total "
        "channel lines(first: 100) { nodes { quantity unitPrice amount "
        "product { id name category } } } } } } } }"
    ),
    "ties of ties": (
        "{ customers(first: 4) { nodes { id socialTies(first: 100) { nodes { type since "
        "customer { id name socialTies(first: 100) { nodes { type customer { id name country } "
        "} } } } } } } }"
    ),
}
"""Requests near the cost maximum (100,000 points by default), each within it."""


@dataclass
class LagPhase:
    name: str
    lags_ms: list[float] = field(default_factory=list, repr=False)
    cpu_ms: list[float] = field(default_factory=list, repr=False)
    """For each tick, the CPU time the loop's thread spent while the ticker waited: the work
    that held the loop, without the time the process waited for a CPU (a shared machine)."""
    requests: int = 0
    refused: int = 0
    costs: dict[str, int] = field(default_factory=dict)
    steps_ms: list[float] = field(default_factory=list, repr=False)
    """The CPU time of each step the loop ran (a callback: one task's run to its next `await`,
    a socket read's handler), over 1 ms: what one request held the loop for at a time. A tick
    waits for every step ready in the same turn of the loop, several requests' at 4 clients."""
    long_steps: dict[str, int] = field(default_factory=dict, repr=False)
    """How many steps over 10 ms stopped at each place (`_where`)."""
    longest_ms: float = 0.0
    longest_step: str = ""
    """What the longest step ran (its callback, a task's coroutine where it stopped)."""
    decode_ms: float = 0.0
    """The longest decoding of an answer by this bench's own client (`response.json()`), which
    runs on the same loop: part of the lag measured that is not the server's."""
    seconds: float = 0.0

    def percentile(self, q: float, values: list[float] | None = None) -> float:
        values = self.lags_ms if values is None else values
        if not values:
            return 0.0
        ordered = sorted(values)
        return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]

    @property
    def max_ms(self) -> float:
        return max(self.lags_ms, default=0.0)


def _where(handle: asyncio.events.Handle) -> str:
    """Where a task's innermost coroutine outside asyncio stands (file:line): where its step
    stopped."""
    task = getattr(getattr(handle, "_callback", None), "__self__", None)
    if not isinstance(task, asyncio.Task):
        return repr(getattr(handle, "_callback", handle))[:80]
    coro: object = task.get_coro()
    place = "?"
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None and f"{os.sep}asyncio{os.sep}" not in frame.f_code.co_filename:
            place = f"{frame.f_code.co_filename.rsplit(os.sep, 2)[-1]}:{frame.f_lineno}"
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return place


class _StepTimer:
    """Times each step the loop runs (`asyncio.Handle._run`, which every callback, task step
    and socket handler goes through) into `phase` while the `with` block runs."""

    def __init__(self, phase: LagPhase) -> None:
        self.phase = phase
        self._run = asyncio.events.Handle._run

    def __enter__(self) -> _StepTimer:
        run, phase = self._run, self.phase

        def timed(handle: asyncio.events.Handle) -> None:
            started = time.thread_time()
            run(handle)
            ms = (time.thread_time() - started) * 1000
            if ms > 10.0:
                key = f"stopped at {_where(handle)}"
                phase.long_steps[key] = phase.long_steps.get(key, 0) + 1
            if ms > 1.0:
                if ms > phase.longest_ms:
                    phase.longest_ms = ms
                    phase.longest_step = f"{ms:.1f} ms: {handle!r}"[:400]
                phase.steps_ms.append(ms)

        asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.events.Handle._run = self._run  # type: ignore[method-assign,assignment]


async def _ticker(phase: LagPhase, stop: asyncio.Event) -> None:
    while not stop.is_set():
        asked, asked_cpu = time.perf_counter(), time.thread_time()
        await asyncio.sleep(TICK_S)
        phase.lags_ms.append((time.perf_counter() - asked - TICK_S) * 1000)
        phase.cpu_ms.append((time.thread_time() - asked_cpu) * 1000)


async def _heavy_client(
    client: httpx.AsyncClient, key: str, phase: LagPhase, until: float, offset: int
) -> None:
    names = list(HEAVY)
    sent = offset
    while time.perf_counter() < until:
        name = names[sent % len(names)]
        sent += 1
        response = await client.post(
            "/graphql", json={"query": HEAVY[name]}, headers={"authorization": f"Bearer {key}"}
        )
        decoding = time.thread_time()
        body = response.json()
        phase.decode_ms = max(phase.decode_ms, (time.thread_time() - decoding) * 1000)
        cost = (body.get("extensions") or {}).get("cost") or {}
        phase.costs[name] = int(cost.get("requested", 0))
        if response.status_code != 200 or body.get("errors"):
            phase.refused += 1
        else:
            phase.requests += 1


async def _phase(
    name: str, client: httpx.AsyncClient, key: str, clients: int, seconds: float
) -> LagPhase:
    phase = LagPhase(name)
    with _StepTimer(phase):
        stop = asyncio.Event()
        ticker = asyncio.create_task(_ticker(phase, stop))
        started = time.perf_counter()
        until = started + seconds
        heavy = (_heavy_client(client, key, phase, until, i) for i in range(clients))
        await asyncio.gather(*heavy)
        phase.seconds = time.perf_counter() - started
        stop.set()
        await ticker
    return phase


async def run(
    work: Path, folder: Path, customers: int, *, clients: int, seconds: float,
    store: str | None = None, allow_wipe: bool = False,
) -> list[LagPhase]:  # fmt: skip
    settings = bench_settings(store, work / f"api-store-{customers}")
    external = settings.kind != "embedded"
    store_dir = work / f"api-{settings.kind}-{customers}" if external else settings.data_dir
    graph = await open_store(settings)
    try:
        await ensure_loaded(graph, folder, store_dir, work / f"api-{customers}.rejects.csv",
                            external=external, allow_wipe=allow_wipe)  # fmt: skip
        info, key = await create_key(graph, Role.ADMIN, "bench lag")
        app_settings = Settings.from_env(store=settings)
        app = create_app(app_settings, store=graph, production=True, rate_limiter=None,
                         points_limiter=None, failed_auth_limiter=None)  # fmt: skip
        transport = httpx.ASGITransport(app=app)
        phases = []
        try:
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=120) as c,
            ):
                for name in HEAVY:  # warm: plans made, documents parsed and costed
                    for _ in range(2):
                        await c.post("/graphql", json={"query": HEAVY[name]},
                                     headers={"authorization": f"Bearer {key}"})  # fmt: skip
                slice_s = api_schema.LIST_TIME_SLICE_S
                gc.unfreeze()  # as before: full collections walk the whole heap
                api_schema.LIST_TIME_SLICE_S = 0.0  # and lists are completed in one go
                try:
                    print(f"  before: {clients} heavy clients, {seconds:g}s ...", flush=True)
                    phases.append(await _phase("before", c, key, clients, seconds))
                finally:
                    api_schema.LIST_TIME_SLICE_S = slice_s
                gc.collect()
                gc.freeze()
                print(f"  now: {clients} heavy clients, {seconds:g}s ...", flush=True)
                phases.append(await _phase("now", c, key, clients, seconds))
        finally:
            await revoke_key(graph, info.id)
        return phases
    finally:
        await graph.close()


def report(phases: list[LagPhase]) -> list[str]:
    lines = [f"{'phase':<10}{'heavy answered':>15}{'refused':>9}{'ticks':>8}"
             f"{'max lag ms':>12}{'p99 lag ms':>12}{'p50 lag ms':>12}"
             f"{'max CPU ms':>12}{'p99 CPU ms':>12}"
             f"{'max step ms':>13}{'p99 step ms':>13}"]  # fmt: skip
    for p in phases:
        lags = f"{p.max_ms:>12.1f}{p.percentile(0.99):>12.1f}{p.percentile(0.5):>12.1f}"
        cpu = f"{max(p.cpu_ms, default=0.0):>12.1f}{p.percentile(0.99, p.cpu_ms):>12.1f}"
        step = f"{max(p.steps_ms, default=0.0):>13.1f}{p.percentile(0.99, p.steps_ms):>13.1f}"
        lines.append(
            f"{p.name:<10}{p.requests:>15}{p.refused:>9}{len(p.lags_ms):>8}{lags}{cpu}{step}"
        )
    for p in phases:
        lines.append(f"longest step, {p.name}: {p.longest_step}")
        top = sorted(p.long_steps.items(), key=lambda kv: -kv[1])[:12]
        lines.extend(f"  {n} steps over 10 ms: {k}" for k, n in top)
    lines.append("the bench client's longest decoding of an answer (on the same loop), ms: "
                 + ", ".join(f"{p.name} {p.decode_ms:.1f}" for p in phases))  # fmt: skip
    costs = phases[-1].costs if phases else {}
    lines.append("heavy requests (cost in points): "
                 + ", ".join(f"{name} {cost:,}" for name, cost in costs.items()))  # fmt: skip
    return lines
