"""`python -m bench.order_race`: its check finds a doubled line, and a short run through a real
`crm-graph serve` records every round's order once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.order_race import bad_rounds, run
from crm_graph.graph.store import GraphStore


async def test_the_check_finds_a_doubled_line_and_only_that(store: GraphStore) -> None:
    # given round 0's order with one line, and round 1's with its line doubled
    await store.write(
        "CREATE (p:Product {id: 'p-race'}), (a:Transaction {id: 'race-0'}), "
        "(b:Transaction {id: 'race-1'}), (a)-[:CONTAINS {amount: 1.5}]->(p), "
        "(b)-[:CONTAINS {amount: 1.5}]->(p), (b)-[:CONTAINS {amount: 2.5}]->(p)"
    )
    # then round 0 is fine and round 1 is reported with both lines
    assert await bad_rounds(store, 0) == []
    [bad] = await bad_rounds(store, 1)
    assert sorted(line["props"]["amount"] for line in bad["lines"]) == [1.5, 2.5]


async def test_a_short_run_through_serve_doubles_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(2, 4, tmp_path) == 0
    assert "0 doubled orders in 2 rounds of 4 writers" in capsys.readouterr().out
