"""The same business trained on FalkorDB and on Neo4j gives the same report: the tables read are
in an order of their own, not the one each store returns rows in."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from crm_graph.analytics.extract import read_tables
from crm_graph.analytics.train import train
from crm_graph.graph.falkordb_store import FalkorStore
from crm_graph.graph.settings import StoreSettings, parse_store
from crm_graph.graph.store import GraphStore, open_store
from crm_graph.loaders.load import load_folder
from crm_graph.loaders.synthetic import generate
from tests.conftest import NEO4J_URI, NO_NEO4J


@pytest.fixture
async def both_engines(
    embedded_server: FalkorStore, embedded_settings: StoreSettings
) -> AsyncIterator[tuple[GraphStore, GraphStore]]:
    """An empty graph on FalkorDB and one on Neo4j, at once."""
    if not NEO4J_URI:
        pytest.skip(NO_NEO4J)
    falkordb = await open_store(
        StoreSettings(kind="embedded", data_dir=embedded_settings.data_dir,
                      graph_name=f"engines-{os.getpid()}")
    )  # fmt: skip
    neo4j = await open_store(parse_store(NEO4J_URI), bootstrap=False)
    try:
        await neo4j.delete_graph()  # type: ignore[attr-defined]
        await neo4j.bootstrap()
        yield falkordb, neo4j
    finally:
        await falkordb.delete_graph()  # type: ignore[attr-defined]
        await falkordb.close()
        await neo4j.close()


def _comparable(metrics: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The report's figures, times left out."""
    return {
        stage: {k: v for k, v in figures.items() if "seconds" not in k}
        for stage, figures in metrics.items()
    }


@pytest.mark.neo4j
async def test_the_same_business_trains_to_the_same_report_on_both_engines(
    both_engines: tuple[GraphStore, GraphStore], tmp_path: Path
) -> None:
    # given one generated business loaded into both engines
    generate(tmp_path / "biz", 600, seed=5)
    reports = []
    tables = []
    for store in both_engines:
        await load_folder(store, tmp_path / "biz", progress=False,
                          rejects_path=tmp_path / f"{store.dialect.name}.rejects.csv")  # fmt: skip
        # when the tables are read and everything is trained
        tables.append(await read_tables(store))
        reports.append(await train(store, horizon_days=90, processes=1,
                                   model_dir=tmp_path / store.dialect.name))  # fmt: skip
    # then the tables are the same, row for row ...
    falkordb, neo4j = tables
    for name in ("customers", "orders", "lines", "interactions", "ties"):
        left, right = getattr(falkordb, name), getattr(neo4j, name)
        assert list(left.columns) == list(right.columns), name
        assert left.astype(object).where(left.notna(), None).values.tolist() == (
            right.astype(object).where(right.notna(), None).values.tolist()
        ), name
    # ... and so is the report: segment sizes, communities, every metric
    assert reports[0].skipped == reports[1].skipped
    assert _comparable(reports[0].metrics) == _comparable(reports[1].metrics)
    communities = [
        await store.read(
            "MATCH (c:Customer) WHERE c.mlCommunity IS NOT NULL "
            "OPTIONAL MATCH (c)-[:IN_SEGMENT]->(g:Segment) "
            "RETURN c.id AS id, c.mlCommunity AS community, collect(g.name) AS segments "
            "ORDER BY id"
        )
        for store in both_engines
    ]
    assert communities[0] and communities[0] == communities[1]
