"""Load throughput: `crm-graph load` against raw batched UNWIND on the same engine, same run.

Both sides write the same generated business into their own fresh graph on one embedded
FalkorDB server (or, with `--store`, on a Neo4j server: its one database, wiped before each
side and after the last), with the same write statements (`graph.loader_writes`):

- **raw**: the files are parsed into parameter batches *before* the clock starts (no
  validation, no identity resolution, no look-ups); only the UNWIND writes are timed. This is
  the engine's own speed for this graph model. The raw side can be run in several forms
  (`--raw-forms BATCHxWRITERS,...`: the batch size, and how many writers send disjoint batches
  of the same file kind at once; a transaction's lines stay in one batch): the best one is the
  reference the loader is compared with. FalkorDB runs writes one at a time, so one writer is
  its best form; Neo4j runs transactions side by side.
- **loader**: `load_folder` end to end, as `crm-graph load` runs it: reading, validating every
  row, resolving identities, looking up customers, writing, totals, rejects file.

rows/s counts the rows of all files (customers + products + transaction lines + interactions +
ties). The loader's peak RSS is reported too (the process's, so it includes the raw side's
pre-parsed batches when raw runs first: run `--only loader` for the loader's own figure).
"""

from __future__ import annotations

import asyncio
import csv
import resource
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.business import NotTheBenchsGraph, wipe
from crm_graph.graph import loader_writes
from crm_graph.graph.falkordb_store import FalkorStore
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import open_store
from crm_graph.loaders.fields import parse_instant
from crm_graph.loaders.load import load_folder


@dataclass
class LoadResult:
    side: str
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _csv(path: Path) -> Iterator[dict[str, str]]:
    if path.exists():
        with open(path, newline="", encoding="utf-8") as fh:
            yield from csv.DictReader(fh)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


Statement = tuple[str, dict[str, Any]]
Phase = list[list[Statement]]
"""The writes of one file kind: units of statements, each unit run in order by one writer,
units of a phase disjoint (they may run side by side), phases one after the other."""


@dataclass(frozen=True)
class RawForm:
    batch_size: int
    writers: int

    @property
    def label(self) -> str:
        return f"raw UNWIND {self.batch_size}x{self.writers}"


NEO4J_RAW_FORMS = "1000x1,5000x1,1000x2,5000x2,10000x2,2000x4"
"""The raw forms the load bench tries on Neo4j by default (found best: see bench/README.md)."""


def parse_forms(text: str | None, settings: StoreSettings) -> list[RawForm]:
    """`--raw-forms`: comma-separated BATCHxWRITERS; the default depends on the engine."""
    default = NEO4J_RAW_FORMS if settings.kind == "neo4j" else "5000x1"
    forms = []
    for part in (text or default).split(","):
        size, _, writers = part.strip().lower().partition("x")
        try:
            form = RawForm(int(size), int(writers or 1))
        except ValueError:
            raise ValueError(f"--raw-forms: {part.strip()!r} is not BATCHxWRITERS") from None
        if form.batch_size < 1 or form.writers < 1:
            raise ValueError(f"--raw-forms: {part.strip()!r} needs positive numbers")
        forms.append(form)
    return forms


def _by_transaction(lines: list[dict[str, str]], size: int) -> Iterator[list[dict[str, str]]]:
    """Chunks of about `size` lines that never split a transaction (lines of one transaction
    are contiguous in the generated files)."""
    chunk: list[dict[str, str]] = []
    for line in lines:
        if len(chunk) >= size and line["transaction_id"] != chunk[-1]["transaction_id"]:
            yield chunk
            chunk = []
        chunk.append(line)
    if chunk:
        yield chunk


def raw_batches(folder: Path, batch_size: int) -> tuple[list[Statement], int]:
    """Every write of the folder as (statement, parameters), prepared up front; the row count."""
    phases, rows = raw_phases(folder, batch_size)
    return [s for phase in phases for unit in phase for s in unit], rows


def raw_phases(folder: Path, batch_size: int) -> tuple[list[Phase], int]:
    """Every write of the folder as phases of units of (statement, parameters), prepared up
    front; the row count."""
    phases: list[Phase] = []
    statements: Phase = []
    rows = 0
    customers = list(_csv(folder / "customers.csv"))
    rows += len(customers)
    for chunk in _chunks(customers, batch_size):
        people = [
            {
                "id": r["customer_id"],
                "props": {"name": r["name"], "city": r["city"], "country": r["country"]},
            }
            for r in chunk
        ]
        sources = [
            {
                "id": r["customer_id"],
                "customer": r["customer_id"],
                "system": r["source_system"],
                "emailKey": r["email"].strip().lower() or None,
                "phoneKey": None,
            }
            for r in chunk
        ]
        statements.append(
            [(loader_writes.UPSERT_CUSTOMERS, {"customers": people, "sources": sources})]
        )
    phases.append(statements)
    statements = []
    products = list(_csv(folder / "products.csv"))
    rows += len(products)
    for chunk in _chunks(products, batch_size):
        params = [
            {
                "id": r["product_id"],
                "props": {"name": r["name"], "price": float(r["price"])},
                "category": r["category"],
            }
            for r in chunk
        ]
        statements.append([(loader_writes.UPSERT_PRODUCTS, {"rows": params})])
    phases.append(statements)
    statements = []
    lines = list(_csv(folder / "transactions.csv"))
    rows += len(lines)
    load = uuid.uuid4().hex
    for chunk in _by_transaction(lines, batch_size):
        orders: dict[str, dict[str, Any]] = {}
        items: dict[tuple[str, str], dict[str, Any]] = {}
        for r in chunk:
            orders.setdefault(
                r["transaction_id"],
                {
                    "id": r["transaction_id"],
                    "customer": r["customer_id"],
                    "at": parse_instant(r["timestamp"]),
                    "channel": r["channel"],
                    "other": 0.0,
                },
            )
            key = (r["transaction_id"], r["product_id"])
            item = items.setdefault(
                key,
                {
                    "transaction": key[0],
                    "product": key[1],
                    "quantity": 0.0,
                    "amount": 0.0,
                    "unitPrice": float(r["unit_price"]),
                },
            )
            item["quantity"] += float(r["quantity"])
            item["amount"] += float(r["amount"])
        statements.append([
            (
                loader_writes.UPSERT_TRANSACTIONS,
                {
                    "orders": sorted(orders.values(), key=lambda o: o["customer"]),
                    "items": sorted(items.values(), key=lambda i: i["product"]),
                    "load": load,
                },
            ),
            (loader_writes.TRANSACTION_TOTALS, {"rows": [
                {"id": o["id"], "customer": o["customer"], "event": "{}"} for o in orders.values()
            ], "load": load}),
        ])  # fmt: skip
    phases.append(statements)
    statements = []
    interactions = list(_csv(folder / "interactions.csv"))
    rows += len(interactions)
    for chunk in _chunks(interactions, batch_size):
        params = [
            {
                "id": r["interaction_id"],
                "customer": r["customer_id"],
                "props": {
                    "type": r["type"],
                    "at": parse_instant(r["timestamp"]),
                    "channel": r["channel"],
                },
            }
            for r in chunk
        ]
        params.sort(key=lambda row: row["customer"])  # locks in one order, as the loader's
        statements.append([(loader_writes.UPSERT_INTERACTIONS, {"rows": params})])
    phases.append(statements)
    statements = []
    ties = list(_csv(folder / "social_ties.csv"))
    rows += len(ties)
    for chunk in _chunks(ties, batch_size):
        by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in chunk:
            by_type[r["type"] or "KNOWS"].append(
                {
                    "source": r["source_customer_id"],
                    "target": r["target_customer_id"],
                    "since": None,
                    "weight": float(r["weight"]) if r["weight"] else None,
                }
            )
        for tie_type, params in sorted(by_type.items()):
            statements.append([(loader_writes.upsert_ties(tie_type), {"rows": params})])
    phases.append(statements)
    return phases, rows


async def _fresh_graph(settings: StoreSettings, name: str) -> Any:
    """A store on an empty graph: a new named graph on the embedded FalkorDB, or the whole
    (wiped) database of an external store."""
    if settings.kind == "embedded":
        store = await open_store(
            StoreSettings(
                kind="embedded",
                data_dir=settings.data_dir,
                appendfsync=settings.appendfsync,
                graph_name=name,
            )
        )
        assert isinstance(store, FalkorStore)
    else:
        store = await open_store(settings)
    await wipe(store)
    return store


async def _check_empty(settings: StoreSettings, allow_wipe: bool) -> None:
    """Refuse to wipe an external store that holds a graph, unless allowed."""
    if settings.kind == "embedded":
        return
    store = await open_store(settings)
    try:
        found = (await store.read("MATCH (n) RETURN count(n) AS count"))[0]["count"]
    finally:
        await store.close()
    if found and not allow_wipe:
        raise NotTheBenchsGraph(
            f"{settings.description} holds {found:,} nodes: the load bench wipes the database "
            "before each side; pass --wipe to let it"
        )


async def run_raw(settings: StoreSettings, folder: Path, form: RawForm) -> LoadResult:
    phases, rows = raw_phases(folder, form.batch_size)
    store = await _fresh_graph(settings, f"bench-raw-{uuid.uuid4().hex[:8]}")
    try:
        started = time.perf_counter()

        async def writer(units: Iterator[list[Statement]]) -> None:
            for unit in units:  # the writers share one iterator: each unit is sent once
                for query, params in unit:
                    await store.write(query, params)

        for phase in phases:
            units = iter(phase)
            await asyncio.gather(*(writer(units) for _ in range(form.writers)))
        seconds = time.perf_counter() - started
    finally:
        await store.delete_graph()
        await store.close()
    return LoadResult(form.label, rows, seconds)


async def run_loader(
    settings: StoreSettings, folder: Path, batch_size: int, rejects: Path,
    writers: int | None = None,
) -> LoadResult:  # fmt: skip
    store = await _fresh_graph(settings, f"bench-load-{uuid.uuid4().hex[:8]}")
    try:
        started = time.perf_counter()
        report = await load_folder(
            store, folder, rejects_path=rejects, batch_size=batch_size, progress=False,
            writers=writers,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    finally:
        await store.delete_graph()
        await store.close()
    label = f"crm-graph load {batch_size}" + (f" x{writers}" if writers else "")
    return LoadResult(label, report.rows_read, seconds)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(
    settings: StoreSettings, folder: Path, batch_size: int, only: str | None, rejects: Path,
    *, forms: list[RawForm] | None = None, writers: int | None = None, allow_wipe: bool = False,
) -> list[LoadResult]:  # fmt: skip
    """The raw forms (default: `batch_size` x 1), then the loader; each on a fresh graph."""

    async def go() -> list[LoadResult]:
        await _check_empty(settings, allow_wipe)
        results = []
        if only in (None, "raw"):
            for form in forms or [RawForm(batch_size, 1)]:
                print(f"  {form.label} ...", flush=True)
                results.append(await run_raw(settings, folder, form))
                print(f"    {results[-1].rows_per_second:,.0f} rows/s", flush=True)
        if only in (None, "loader"):
            print("  crm-graph load ...", flush=True)
            results.append(await run_loader(settings, folder, batch_size, rejects, writers))
        return results

    return asyncio.run(go())
