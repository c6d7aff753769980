"""Concurrent batch writers (`load_folder(writers=)`, the default on Neo4j): the same folder gives
the same graph, the same report and the same rejects file as one writer, byte for byte, even
with batches so small that orders are split between them."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import DEFAULT_WRITERS, LoadReport, load_folder
from crm_graph.loaders.synthetic import generate
from tests.helpers import write_csv

SNAPSHOT = {
    "orders": "MATCH (c:Customer)-[:PLACED]->(t:Transaction) "
    "RETURN t.id AS id, c.id AS customer, t.at AS at, round(t.total * 100) AS cents, "
    "t.itemCount AS items ORDER BY id",
    "lines": "MATCH (t:Transaction)-[e:CONTAINS]->(p:Product) "
    "RETURN t.id AS t, p.id AS p, e.quantity AS q, round(e.amount * 100) AS cents ORDER BY t, p",
    "contacts": "MATCH (c:Customer)-[:HAD]->(i:Interaction) "
    "RETURN i.id AS id, c.id AS customer, i.type AS type ORDER BY id",
    "ties": "MATCH (a:Customer)-[r]->(b:Customer) "
    "RETURN a.id AS a, type(r) AS type, b.id AS b ORDER BY a, type, b",
    "customers": "MATCH (c:Customer) RETURN c.id AS id, c.name AS name ORDER BY id",
}


async def _snapshot(store: GraphStore) -> dict[str, list[dict[str, Any]]]:
    return {name: await store.read(query) for name, query in SNAPSHOT.items()}


async def _load(store: GraphStore, folder: Path, rejects: Path, writers: int) -> LoadReport:
    await store.delete_graph()  # type: ignore[attr-defined]
    await store.bootstrap()
    return await load_folder(
        store, folder, rejects_path=rejects, batch_size=97, progress=False, writers=writers
    )


async def test_four_writers_load_what_one_writer_loads(store: GraphStore, tmp_path: Path) -> None:
    # given a generated business, with an order naming an unknown customer among its lines
    folder = tmp_path / "business"
    generate(folder, 150, 3)
    with open(folder / "transactions.csv", newline="", encoding="utf-8") as fh:
        lines = list(csv.DictReader(fh))
    lines.insert(500, {**lines[500], "transaction_id": "T-ghost", "customer_id": "nobody"})
    write_csv(folder / "transactions.csv", lines)
    # when it is loaded with one writer, then again into an empty graph with four
    one = await _load(store, folder, tmp_path / "one.rejects.csv", writers=1)
    expected = await _snapshot(store)
    four = await _load(store, folder, tmp_path / "four.rejects.csv", writers=4)
    # then the graphs, the reports and the rejects files are the same
    assert await _snapshot(store) == expected
    assert len(expected["orders"]) > 500 and len(expected["contacts"]) > 100
    assert [vars(f) for f in four.files] == [vars(f) for f in one.files]
    assert four.rows_rejected == one.rows_rejected >= 1
    one_rejects = (tmp_path / "one.rejects.csv").read_text()
    assert "nobody" in one_rejects
    assert (tmp_path / "four.rejects.csv").read_text() == one_rejects


async def test_loading_again_with_four_writers_changes_nothing(
    store: GraphStore, tmp_path: Path
) -> None:
    folder = tmp_path / "business"
    generate(folder, 80, 5)
    await _load(store, folder, tmp_path / "r.csv", writers=4)
    before = await _snapshot(store)
    await load_folder(store, folder, rejects_path=tmp_path / "r2.csv", batch_size=97,
                      progress=False, writers=4)  # fmt: skip
    assert await _snapshot(store) == before


def test_neo4j_gets_concurrent_writers_and_others_one() -> None:
    assert DEFAULT_WRITERS.get("neo4j", 1) > 1
    assert DEFAULT_WRITERS.get("falkordb", 1) == 1


async def test_writers_must_be_positive(store: GraphStore, tmp_path: Path) -> None:
    generate(tmp_path / "b", 5, 1)
    with pytest.raises(ValueError, match="writers"):
        await load_folder(store, tmp_path / "b", rejects_path=tmp_path / "r.csv", writers=0)
