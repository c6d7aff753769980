"""Soak: the API under a steady mix of concurrent reads and writes for minutes, then a check
that every acknowledged write is in the graph.

The business is generated and loaded once into `soak-base-<customers>` under the work folder
(cached like the API bench's store: a marker records the complete load); every run works on a
fresh copy of it, `soak-store-<customers>`, so runs are repeatable and the cached load is never
written to. The copy stays after the run for inspection and is replaced by the next run.

`crm-graph serve` runs as a subprocess on the copy (rate limiter off), and the bench runs, for
the given time, from one process over keep-alive connections on 127.0.0.1:

- `--readers` clients asking for the GraphQL customer 360 (`bench.api.GRAPHQL_360`) of random
  customers, one in five of them among the customers the writers are writing;
- `--writers` clients, each owning its own customers (a share of a random sample of existing
  customers, and the new customers it creates), each doing in a loop: `recordTransaction` (a new
  order, or now and then the same input as one of its earlier orders again, which must change
  nothing), `recordInteraction`, `upsertCustomers` on its existing customers (a new name) and
  on new customers. One owner per customer makes the expected end state exact.

Any non-200 answer, any GraphQL error, any typed mutation error and any answer that disagrees
with the input counts as an error. Reported: requests, errors and p50/p99 latency by kind; the
API server's and FalkorDB's resident memory (VmRSS) after the warm-up, at the middle and at the
end, sampled in between too; Python tracebacks in the server's log. At the end, through
GraphQL: each written customer's name, totalSpend and orderCount equal what its baseline and the
acknowledged writes imply, and (raw Cypher) its count of interactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.api import GRAPHQL_360
from bench.business import customer_ids, ensure_loaded
from bench.server import ApiServer, api_server, create_admin_key, falkordb_pid, rss_mb, wait_ready
from crm_graph.graph.embedded import (
    LOCK_FILE,
    LOG_FILE,
    PID_FILE,
    SOCKET_FILE,
    STATE_FILE,
    EmbeddedServer,
)
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore, open_store

KINDS = (
    "customer360",
    "recordTransaction",
    "recordInteraction",
    "upsertCustomers existing",
    "upsertCustomers new",
)
WRITE_MIX = (
    ("recordTransaction", 0.35),
    ("recordInteraction", 0.25),
    ("upsertCustomers existing", 0.20),
    ("upsertCustomers new", 0.20),
)
REPEAT_SHARE = 0.1
"""Share of recordTransaction calls that send an earlier acknowledged order again."""
WRITTEN_SAMPLE = 200
"""Existing customers the writers share out among themselves."""
REQUEST_TIMEOUT = 30.0
WARMUP_SECONDS = 60.0
VERIFY_CLIENTS = 8

UPSERT = """
mutation Upsert($input: [CustomerInput!]!) {
  upsertCustomers(input: $input) {
    __typename
    ... on UpsertCustomersSuccess { customers { id name } merges { customerId mergedId } }
    ... on UpsertCustomersError { code field message }
  }
}
"""
RECORD_TRANSACTION = """
mutation Record($input: TransactionInput!) {
  recordTransaction(input: $input) {
    __typename
    ... on RecordTransactionSuccess { transaction { id total } }
    ... on RecordTransactionError { code field message }
  }
}
"""
RECORD_INTERACTION = """
mutation Contact($input: InteractionInput!) {
  recordInteraction(input: $input) {
    __typename
    ... on RecordInteractionSuccess { interaction { id } }
    ... on RecordInteractionError { code field message }
  }
}
"""
CUSTOMER_TOTALS = """
query Totals($id: ID!) { customer(id: $id) { id name totalSpend orderCount } }
"""
INTERACTION_COUNTS = """
UNWIND $ids AS cid
MATCH (c:Customer {id: cid})
RETURN cid AS id, size([(c)-[:HAD]->(i:Interaction) | i.id]) AS interactions
"""
PRODUCT_IDS = "MATCH (p:Product) RETURN p.id AS id ORDER BY id LIMIT 200"


class WriteRefused(Exception):
    """A write was answered, but not with the success the input should give."""


# -- what was sent and what it implies ---------------------------------------------------------


@dataclass
class Kind:
    """Requests of one kind: answered ones with their latency, and errors."""

    requests: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    first_errors: list[str] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the latencies in ms (0 when there are none)."""
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]

    def summary(self, seconds: float) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "requests_per_second": round(self.requests / seconds, 1) if seconds else 0.0,
            "p50_ms": round(self.percentile(0.50), 2),
            "p99_ms": round(self.percentile(0.99), 2),
            "first_errors": self.first_errors,
        }


@dataclass
class Ledger:
    """One written customer: its state before the run plus what the acknowledged writes add."""

    customer_id: str
    name: str | None
    spend: float
    orders: int
    interactions: int
    new: bool
    orders_sent: list[dict[str, Any]] = field(default_factory=list, repr=False)
    """Acknowledged recordTransaction inputs, with the total the server answered."""
    uncertain: bool = False
    """A write to it failed without an answer: whether it took effect is unknown."""


@dataclass
class WriteCheck:
    customers: int
    skipped_uncertain: int
    mismatches: list[str]

    @property
    def ok(self) -> bool:
        return not self.mismatches


@dataclass
class Memory:
    """VmRSS in MB of the API server and of FalkorDB, by seconds since the warm-up ended."""

    samples: list[dict[str, float | None]] = field(default_factory=list)

    def take(self, elapsed: float, api_pid: int, engine_pid: int | None) -> dict[str, float | None]:
        sample = {
            "seconds": round(elapsed, 1),
            "api_mb": _round(rss_mb(api_pid)),
            "falkordb_mb": _round(rss_mb(engine_pid)),
        }
        self.samples.append(sample)
        return sample


@dataclass
class SoakResult:
    customers_in_graph: int
    seconds: float
    readers: int
    writers: int
    kinds: dict[str, Kind]
    memory: dict[str, dict[str, float | None]]
    samples: list[dict[str, float | None]]
    check: WriteCheck
    server_tracebacks: int
    ledgers: dict[str, Ledger] = field(repr=False)

    @property
    def errors(self) -> int:
        return sum(k.errors for k in self.kinds.values())

    @property
    def ok(self) -> bool:
        return self.errors == 0 and self.check.ok and self.server_tracebacks == 0

    def summary(self) -> dict[str, Any]:
        return {
            "customers_in_graph": self.customers_in_graph,
            "seconds": round(self.seconds, 1),
            "readers": self.readers,
            "writers": self.writers,
            "requests": {name: k.summary(self.seconds) for name, k in self.kinds.items()},
            "errors": self.errors,
            "rss_mb": self.memory,
            "rss_samples": self.samples,
            "write_check": {
                "customers_checked": self.check.customers,
                "skipped_uncertain": self.check.skipped_uncertain,
                "mismatches": self.check.mismatches[:50],
                "ok": self.check.ok,
            },
            "server_log_tracebacks": self.server_tracebacks,
            "ok": self.ok,
        }


# -- requests ----------------------------------------------------------------------------------


class Client:
    """GraphQL over one httpx client with an admin key; times and counts every request."""

    def __init__(self, http: httpx.AsyncClient, key: str, kinds: dict[str, Kind]) -> None:
        self.http = http
        self.key = key
        self.kinds = kinds

    async def post(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """`data` of an answer with status 200 and no GraphQL errors; raises otherwise."""
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.key}"},
        )
        if response.status_code != 200:
            raise WriteRefused(f"HTTP {response.status_code}: {response.text[:300]}")
        body = response.json()
        if body.get("errors"):
            raise WriteRefused(f"GraphQL errors: {json.dumps(body['errors'])[:300]}")
        return body["data"]  # type: ignore[no-any-return]

    async def customer_360(self, customer_id: str) -> dict[str, Any]:
        """`data.customer` of `GRAPHQL_360`; raises on any error or a null customer."""
        try:
            customer = (await self.post(GRAPHQL_360, {"id": customer_id}))["customer"]
        except WriteRefused as e:  # a read: named as `bench.api` names its failures
            raise LookupError(str(e)) from e
        if customer is None:
            raise LookupError(f"GraphQL 360 of {customer_id!r} is null")
        return customer  # type: ignore[no-any-return]

    async def timed(self, kind: str, request: Awaitable[Any]) -> tuple[bool, Any]:
        """Await `request`; (True, its value) when it succeeded, (False, the exception) if not."""
        stats = self.kinds[kind]
        sent = time.perf_counter()
        try:
            value = await request
        except Exception as e:  # counted and reported; the soak goes on
            stats.errors += 1
            if len(stats.first_errors) < 3:
                stats.first_errors.append(f"{type(e).__name__}: {e}"[:400])
            return False, e
        stats.latencies_ms.append((time.perf_counter() - sent) * 1000)
        stats.requests += 1
        return True, value


def _success(data: dict[str, Any], field_name: str, typename: str) -> dict[str, Any]:
    result = data[field_name]
    if result["__typename"] != typename:
        raise WriteRefused(f"{field_name} answered {json.dumps(result)[:300]}")
    return result  # type: ignore[no-any-return]


# -- the clients -------------------------------------------------------------------------------


async def reader(
    client: Client, ids: list[str], written: list[str], deadline: float, seed: int
) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        pool = written if written and rng.random() < 0.2 else ids
        customer_id = rng.choice(pool)
        await client.timed("customer360", client.customer_360(customer_id))


class Writer:
    """One writing client and the customers it owns."""

    def __init__(self, client: Client, index: int, run_id: str, owned: list[Ledger],
                 products: list[str], ledgers: dict[str, Ledger], seed: int) -> None:  # fmt: skip
        self.client = client
        self.prefix = f"soak-{run_id}-w{index}"
        self.existing = [ledger for ledger in owned if not ledger.new]
        self.owned = list(owned)
        self.products = products
        self.ledgers = ledgers
        self.rng = random.Random(seed)
        self.sequence = 0

    def _next_id(self, what: str) -> str:
        self.sequence += 1
        return f"{self.prefix}-{what}{self.sequence}"

    async def run(self, deadline: float) -> None:
        kinds = [kind for kind, _ in WRITE_MIX]
        weights = [weight for _, weight in WRITE_MIX]
        while time.monotonic() < deadline:
            kind = self.rng.choices(kinds, weights)[0]
            if kind == "recordTransaction":
                await self.record_transaction()
            elif kind == "recordInteraction":
                await self.record_interaction()
            elif kind == "upsertCustomers existing" and self.existing:
                await self.upsert_existing()
            else:
                await self.upsert_new()

    async def record_transaction(self) -> None:
        ledger = self.rng.choice(self.owned)
        repeat = bool(ledger.orders_sent) and self.rng.random() < REPEAT_SHARE
        if repeat:
            sent = self.rng.choice(ledger.orders_sent)
            order, expected = sent["input"], sent["total"]
        else:
            order, expected = self._new_order(ledger.customer_id)
        ok, value = await self.client.timed(
            "recordTransaction", self._record(order, expected, repeat)
        )
        if ok and not repeat:
            ledger.spend += expected
            ledger.orders += 1
            ledger.orders_sent.append({"input": order, "total": expected})
        elif not ok and not isinstance(value, WriteRefused):
            ledger.uncertain = True

    def _new_order(self, customer_id: str) -> tuple[dict[str, Any], float]:
        picked = self.rng.sample(self.products, k=min(len(self.products), self.rng.randint(1, 3)))
        lines: list[dict[str, Any]] = [
            {"productId": p, "quantity": self.rng.randint(1, 4),
             "amount": self.rng.randint(1, 400) * 0.25}
            for p in picked
        ]  # fmt: skip
        if self.rng.random() < 0.2:
            lines.append({"amount": self.rng.randint(1, 40) * 0.25})  # a line without a product
        at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=self.rng.randint(0, 500_000))
        order = {
            "id": self._next_id("t"),
            "customerId": customer_id,
            "at": at.isoformat(),
            "channel": "soak",
            "lines": lines,
        }
        return order, sum(line["amount"] for line in lines)

    async def _record(self, order: dict[str, Any], expected: float, repeat: bool) -> None:
        data = await self.client.post(RECORD_TRANSACTION, {"input": order})
        result = _success(data, "recordTransaction", "RecordTransactionSuccess")
        total = result["transaction"]["total"]
        if not math.isclose(total, expected, rel_tol=1e-9, abs_tol=1e-6):
            what = "recording it again" if repeat else "recording it"
            raise WriteRefused(f"order {order['id']}: total {total} after {what}, sent {expected}")

    async def record_interaction(self) -> None:
        ledger = self.rng.choice(self.owned)
        contact = {
            "id": self._next_id("i"),
            "customerId": ledger.customer_id,
            "at": datetime.now(UTC).isoformat(),
            "type": self.rng.choice(["CALL", "EMAIL", "CHAT", "TICKET"]),
            "subject": "soak",
            "sentiment": self.rng.randint(-4, 4) / 4,
        }

        async def send() -> None:
            data = await self.client.post(RECORD_INTERACTION, {"input": contact})
            _success(data, "recordInteraction", "RecordInteractionSuccess")

        ok, value = await self.client.timed("recordInteraction", send())
        if ok:
            ledger.interactions += 1
        elif not isinstance(value, WriteRefused):
            ledger.uncertain = True

    async def upsert_existing(self) -> None:
        chosen = self.rng.sample(self.existing, k=min(len(self.existing), self.rng.randint(1, 3)))
        names = {ledger.customer_id: self._next_id("name ") for ledger in chosen}
        await self._upsert(
            "upsertCustomers existing",
            [{"id": cid, "name": name} for cid, name in names.items()],
            chosen,
        )

    async def upsert_new(self) -> None:
        ids = [self._next_id("c") for _ in range(self.rng.randint(1, 3))]
        rows = [
            {"id": cid, "name": f"Soak {cid}", "email": f"{cid}@soak.example",
             "sourceSystem": "soak", "city": "Soakton"}
            for cid in ids
        ]  # fmt: skip
        fresh = [Ledger(cid, f"Soak {cid}", 0.0, 0, 0, new=True) for cid in ids]
        await self._upsert("upsertCustomers new", rows, fresh)

    async def _upsert(self, kind: str, rows: list[dict[str, Any]], ledgers: list[Ledger]) -> None:
        async def send() -> None:
            data = await self.client.post(UPSERT, {"input": rows})
            result = _success(data, "upsertCustomers", "UpsertCustomersSuccess")
            answered = [(c["id"], c["name"]) for c in result["customers"]]
            if answered != [(r["id"], r["name"]) for r in rows] or result["merges"]:
                raise WriteRefused(f"upsertCustomers answered {json.dumps(result)[:300]}")

        ok, value = await self.client.timed(kind, send())
        for ledger, row in zip(ledgers, rows, strict=True):
            if ok:
                ledger.name = row["name"]
            elif not isinstance(value, WriteRefused):
                ledger.uncertain = True
        if ledgers[0].new and (ok or ledgers[0].uncertain):
            for ledger in ledgers:
                self.ledgers[ledger.customer_id] = ledger
                if ok:
                    self.owned.append(ledger)


# -- checking the writes -----------------------------------------------------------------------


async def baseline(client: Client, store: GraphStore, ids: list[str]) -> dict[str, Ledger]:
    """The existing customers' name, totals (GraphQL) and interaction counts (raw) now."""
    interactions = {
        row["id"]: row["interactions"] for row in await store.read(INTERACTION_COUNTS, {"ids": ids})
    }
    ledgers: dict[str, Ledger] = {}
    for customer_id in ids:
        data = await client.post(CUSTOMER_TOTALS, {"id": customer_id})
        c = data["customer"]
        ledgers[customer_id] = Ledger(
            customer_id, c["name"], c["totalSpend"], c["orderCount"],
            interactions[customer_id], new=False,
        )  # fmt: skip
    return ledgers


async def verify_writes(client: Client, store: GraphStore, ledgers: dict[str, Ledger]
                        ) -> WriteCheck:  # fmt: skip
    """Compare every written customer with its ledger; uncertain ones are skipped (and counted).

    Name, totalSpend and orderCount are read through GraphQL, the count of interactions with one
    raw statement."""
    certain = [ledger for ledger in ledgers.values() if not ledger.uncertain]
    counts = {
        row["id"]: row["interactions"]
        for row in await store.read(INTERACTION_COUNTS, {"ids": [x.customer_id for x in certain]})
    }
    mismatches: list[str] = []
    queue: asyncio.Queue[Ledger] = asyncio.Queue()
    for ledger in certain:
        queue.put_nowait(ledger)

    async def check() -> None:
        while not queue.empty():
            ledger = queue.get_nowait()
            try:
                data = await client.post(CUSTOMER_TOTALS, {"id": ledger.customer_id})
            except WriteRefused as e:
                mismatches.append(f"{ledger.customer_id}: {e}")
                continue
            mismatches.extend(_differences(ledger, data["customer"], counts))

    await asyncio.gather(*(check() for _ in range(VERIFY_CLIENTS)))
    return WriteCheck(len(certain), len(ledgers) - len(certain), sorted(mismatches))


def _differences(ledger: Ledger, found: dict[str, Any] | None, counts: dict[str, int]
                 ) -> list[str]:  # fmt: skip
    who = ledger.customer_id
    if found is None:
        return [f"{who}: not found"]
    out = []
    if not math.isclose(found["totalSpend"], ledger.spend, rel_tol=1e-9, abs_tol=1e-6):
        out.append(f"{who}: totalSpend {found['totalSpend']}, expected {ledger.spend}")
    if found["orderCount"] != ledger.orders:
        out.append(f"{who}: orderCount {found['orderCount']}, expected {ledger.orders}")
    if found["name"] != ledger.name:
        out.append(f"{who}: name {found['name']!r}, expected {ledger.name!r}")
    if counts.get(who) != ledger.interactions:
        out.append(f"{who}: {counts.get(who)} interactions, expected {ledger.interactions}")
    return out


# -- the run -----------------------------------------------------------------------------------


def prepare_store(base: Path, run_dir: Path) -> None:
    """Copy the loaded, stopped store `base` to `run_dir`, replacing what is there (a server
    left running there by an interrupted run is stopped first)."""
    record = EmbeddedServer(base).read_record()
    if record is not None:
        raise RuntimeError(
            f"the store {base} is in use (FalkorDB pid {record.pid}); run the soak when the "
            f"process using it has finished, or `crm-graph --data-dir {base} server stop`"
        )
    if run_dir.exists():
        EmbeddedServer(run_dir).stop()
        shutil.rmtree(run_dir)
    runtime = (STATE_FILE, LOCK_FILE, SOCKET_FILE, PID_FILE, LOG_FILE, "*.tmp")
    shutil.copytree(base, run_dir, ignore=shutil.ignore_patterns(*runtime))


async def load_base(work: Path, folder: Path, customers: int) -> Path:
    """The store with the business loaded (loaded now unless a complete load is recorded),
    closed again so that it can be copied."""
    base = work / f"soak-base-{customers}"
    store = await open_store(StoreSettings(kind="embedded", data_dir=base))
    try:
        await ensure_loaded(store, folder, base, work / f"soak-{customers}.rejects.csv")
    finally:
        await store.close()
    return base


async def run(
    work: Path, folder: Path, customers: int, *, seconds: float, readers: int, writers: int,
    warmup: int = 200, seed: int = 1, on_progress: Callable[[str], None] | None = None,
) -> SoakResult:  # fmt: skip
    """The whole soak: load (once) and copy the store, serve it, soak it, check the writes."""
    note = on_progress or (lambda text: None)
    base = await load_base(work, folder, customers)
    run_dir = work / f"soak-store-{customers}"
    note(f"copying {base.name} to {run_dir.name}")
    await asyncio.to_thread(prepare_store, base, run_dir)
    store = await open_store(StoreSettings(kind="embedded", data_dir=run_dir))
    try:
        ids = await customer_ids(store)
        products = [row["id"] for row in await store.read(PRODUCT_IDS)]
        if not ids or not products:
            raise RuntimeError(f"{run_dir} holds {len(ids)} customers, {len(products)} products")
        _, key = await asyncio.to_thread(create_admin_key, run_dir, "bench soak")
        log = work / f"soak-{customers}-server.log"
        with api_server(run_dir, log) as server:
            await wait_ready(server)
            return await _soak(store, server, run_dir, key, ids, products, seconds=seconds,
                               readers=readers, writers=writers, warmup=warmup, seed=seed,
                               note=note)  # fmt: skip
    finally:
        await store.close()


async def _soak(
    store: GraphStore, server: ApiServer, run_dir: Path, key: str, ids: list[str],
    products: list[str], *, seconds: float, readers: int, writers: int, warmup: int, seed: int,
    note: Callable[[str], None],
) -> SoakResult:  # fmt: skip
    kinds = {name: Kind() for name in KINDS}
    rng = random.Random(seed)
    run_id = time.strftime("%Y%m%dT%H%M%S")
    engine = falkordb_pid(run_dir)
    clients = readers + writers
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=server.url, trust_env=False, timeout=REQUEST_TIMEOUT, limits=limits
    ) as http:
        client = Client(http, key, kinds)
        note(f"warming up ({warmup} reads) and reading the written customers' baseline")
        warm = Client(http, key, {"customer360": Kind()})
        warm_until = time.monotonic() + WARMUP_SECONDS
        for customer_id in rng.sample(ids, k=min(warmup, len(ids))):
            if time.monotonic() > warm_until:
                break
            await warm.timed("customer360", warm.customer_360(customer_id))
        sample = rng.sample(ids, k=min(WRITTEN_SAMPLE, len(ids)))
        ledgers = await baseline(client, store, sample)
        owned = [list(ledgers.values())[w::writers] for w in range(writers)]
        memory = Memory()
        started = time.monotonic()
        marks = {"start": memory.take(0.0, server.process.pid, engine)}
        note(f"soaking for {seconds:g}s: {readers} readers, {writers} writers")
        deadline = started + seconds

        async def sample_memory() -> None:
            every = max(1.0, seconds / 36)
            middle_taken = False
            while time.monotonic() < deadline:
                await asyncio.sleep(min(every, max(0.0, deadline - time.monotonic())))
                elapsed = time.monotonic() - started
                if not middle_taken and elapsed >= seconds / 2:
                    marks["middle"] = memory.take(elapsed, server.process.pid, engine)
                    middle_taken = True
                elif time.monotonic() < deadline:
                    memory.take(elapsed, server.process.pid, engine)

        tasks = [reader(client, ids, sample, deadline, seed + i) for i in range(readers)]
        tasks += [
            Writer(client, w, run_id, owned[w], products, ledgers, seed + 1000 + w).run(deadline)
            for w in range(writers)
        ]
        await asyncio.gather(sample_memory(), *tasks)
        elapsed = time.monotonic() - started
        marks["end"] = memory.take(elapsed, server.process.pid, engine)
        if server.process.poll() is not None:
            raise RuntimeError(f"the API server died during the soak:\n{server.log_tail()}")
        note(f"checking the writes to {len(ledgers):,} customers")
        check = await verify_writes(client, store, ledgers)
    return SoakResult(
        customers_in_graph=len(ids), seconds=elapsed, readers=readers, writers=writers,
        kinds=kinds, memory=marks, samples=memory.samples, check=check,
        server_tracebacks=_tracebacks(server.log_path), ledgers=ledgers,
    )  # fmt: skip


def _tracebacks(log: Path) -> int:
    with contextlib.suppress(OSError):
        return log.read_text(errors="replace").count("Traceback (most recent call last)")
    return 0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
