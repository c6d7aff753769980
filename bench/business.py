"""The benchmarks' business: a generated contract folder, cached under the work folder, and a
store loaded from it once (a marker file records the complete load, so later runs reuse it)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from crm_graph.graph import loader_writes
from crm_graph.graph.settings import StoreSettings, parse_store
from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import load_folder

LOADED_MARKER = "bench-loaded.json"


class NotTheBenchsGraph(RuntimeError):
    """An external store holds a graph the bench did not load: it is not wiped without --wipe."""


def bench_settings(store: str | None, data_dir: Path) -> StoreSettings:
    """The store a bench runs on: `embedded` (in `data_dir`, the default) or any
    `CRM_GRAPH_STORE` value, e.g. `neo4j://user:pass@host:7687`."""
    return parse_store(store or "embedded", data_dir=data_dir)


async def wipe(store: GraphStore) -> None:
    """Delete the whole graph (every node and relationship) and create the schema again."""
    await store.delete_graph()  # type: ignore[attr-defined]
    await store.bootstrap()


def business_folder(work: Path, customers: int, lines_per_customer: float, seed: int) -> Path:
    """The generated business folder under `work`, generated unless it is there already."""
    from crm_graph.loaders.synthetic import generate

    folder = work / f"business-{customers}-{lines_per_customer:g}-{seed}"
    if not (folder / "customers.csv").exists():
        print(f"generating {customers:,} customers into {folder} ...", flush=True)
        report = generate(folder, customers, seed, lines_per_customer=lines_per_customer)
        print(f"  generated in {report.seconds:.1f}s: {report.rows}", flush=True)
    return folder


async def ensure_loaded(
    store: GraphStore,
    folder: Path,
    store_dir: Path,
    rejects: Path,
    *,
    external: bool = False,
    allow_wipe: bool = False,
) -> bool:
    """Load `folder` unless the store already holds what a complete load of it gave (the count
    of customers recorded after the last complete load). True when it loaded.

    An `external` store (Neo4j, or a FalkorDB the bench did not start) is shared by every size
    and business: one that holds customers of another load is wiped first when `allow_wipe`,
    else `NotTheBenchsGraph` is raised and nothing is changed."""
    store_dir.mkdir(parents=True, exist_ok=True)
    marker = store_dir / LOADED_MARKER
    found = (await store.read(loader_writes.COUNT_CUSTOMERS))[0]["count"]
    with contextlib.suppress(OSError, ValueError, KeyError):
        recorded = json.loads(marker.read_text())
        if recorded["folder"] == str(folder.resolve()) and found == recorded["customers"] > 0:
            return False
    if external and found:
        if not allow_wipe:
            raise NotTheBenchsGraph(
                f"{store.description} holds {found:,} customers that are not the bench's "
                f"{folder.name}: pass --wipe to let the bench delete that graph and load its own"
            )
        print(f"wiping {store.description} ({found:,} customers) ...", flush=True)
        await wipe(store)
    print(f"loading {folder} into {store_dir} ...", flush=True)
    report = await load_folder(store, folder, rejects_path=rejects, progress=False)
    customers = (await store.read(loader_writes.COUNT_CUSTOMERS))[0]["count"]
    print(f"  loaded {report.rows_loaded:,} rows in {report.seconds:.1f}s: "
          f"{customers:,} customers", flush=True)  # fmt: skip
    marker.write_text(json.dumps({"folder": str(folder.resolve()), "customers": customers}))
    return True


async def customer_ids(store: GraphStore) -> list[str]:
    rows = await store.read("MATCH (c:Customer) RETURN c.id AS id ORDER BY id")
    return [r["id"] for r in rows]
