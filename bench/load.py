"""Load throughput: `crm-graph load` against raw batched UNWIND on the same engine, same run.

Both sides write the same generated business into their own fresh graph on one embedded
FalkorDB server, with the same batch size and the same write statements (`graph.cypher`):

- **raw**: the files are parsed into parameter batches *before* the clock starts (no
  validation, no identity resolution, no look-ups); only the UNWIND writes are timed. This is
  the engine's own speed for this graph model.
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

from crm_graph.graph import cypher
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


def raw_batches(folder: Path, batch_size: int) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """Every write of the folder as (statement, parameters), prepared up front; the row count."""
    statements: list[tuple[str, dict[str, Any]]] = []
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
        statements.append((cypher.UPSERT_CUSTOMERS, {"customers": people, "sources": sources}))
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
        statements.append((cypher.UPSERT_PRODUCTS, {"rows": params}))
    lines = list(_csv(folder / "transactions.csv"))
    rows += len(lines)
    load = uuid.uuid4().hex
    for chunk in _chunks(lines, batch_size):
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
        statements.append(
            (
                cypher.UPSERT_TRANSACTIONS,
                {"orders": list(orders.values()), "items": list(items.values()), "load": load},
            )
        )
        statements.append((cypher.TRANSACTION_TOTALS, {"ids": list(orders)}))
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
        statements.append((cypher.UPSERT_INTERACTIONS, {"rows": params}))
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
            statements.append((cypher.upsert_ties(tie_type), {"rows": params}))
    return statements, rows


async def _fresh_graph(settings: StoreSettings, name: str) -> FalkorStore:
    store = await open_store(
        StoreSettings(
            kind="embedded",
            data_dir=settings.data_dir,
            appendfsync=settings.appendfsync,
            graph_name=name,
        )
    )
    assert isinstance(store, FalkorStore)
    await store.delete_graph()
    await store.bootstrap()
    return store


async def run_raw(settings: StoreSettings, folder: Path, batch_size: int) -> LoadResult:
    statements, rows = raw_batches(folder, batch_size)
    store = await _fresh_graph(settings, f"bench-raw-{uuid.uuid4().hex[:8]}")
    try:
        started = time.perf_counter()
        for query, params in statements:
            await store.write(query, params)
        seconds = time.perf_counter() - started
    finally:
        await store.delete_graph()
        await store.close()
    return LoadResult("raw UNWIND", rows, seconds)


async def run_loader(
    settings: StoreSettings, folder: Path, batch_size: int, rejects: Path
) -> LoadResult:
    store = await _fresh_graph(settings, f"bench-load-{uuid.uuid4().hex[:8]}")
    try:
        started = time.perf_counter()
        report = await load_folder(
            store, folder, rejects_path=rejects, batch_size=batch_size, progress=False
        )
        seconds = time.perf_counter() - started
    finally:
        await store.delete_graph()
        await store.close()
    return LoadResult("crm-graph load", report.rows_read, seconds)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(
    settings: StoreSettings, folder: Path, batch_size: int, only: str | None, rejects: Path
) -> list[LoadResult]:
    async def go() -> list[LoadResult]:
        results = []
        if only in (None, "raw"):
            results.append(await run_raw(settings, folder, batch_size))
        if only in (None, "loader"):
            results.append(await run_loader(settings, folder, batch_size, rejects))
        return results

    return asyncio.run(go())
