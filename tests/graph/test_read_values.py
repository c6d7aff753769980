"""`read` on FalkorDB decodes the compact reply itself: every value comes out as the client
library's parser followed by `plain` gives it, whether the one-loop decoder takes the reply
(plain values and maps) or hands it to the client (nodes, relationships, paths, dates)."""

from __future__ import annotations

from typing import Any

import pytest

from crm_graph.graph.errors import QueryError
from crm_graph.graph.falkordb_store import FalkorStore
from crm_graph.graph.store import GraphStore
from crm_graph.graph.values import plain

VALUES = [
    "'Zoë \"q\" | ✓'", "''", "2 ^ 53", "9007199254740993", "-7", "0.1", "-1e300", "true", "false",
    "null", "[]", "['a', 1, 2.5, null, true, ['nested']]", "{}", "{a: 1, b: 'x', c: null}",
    "{outer: {inner: [1, {deep: true}]}}", "[{a: 1}, {b: [2.5]}]", "properties(c)",
    "{name: c.name, ties: [(c)-[r:KNOWS]->(o) | {since: r.since, other: properties(o)}]}",
    "c", "r", "[c, o]", "{node: c}", "p", "date('2024-01-02')",
    "point({latitude: 1.5, longitude: 2})",
]  # fmt: skip
"""RETURN expressions over `(c)-[r:KNOWS]->(o)` and the path `p`: plain ones, maps, and kinds
the client library parses."""


@pytest.fixture
async def falkordb(store: GraphStore) -> FalkorStore:
    if not isinstance(store, FalkorStore):
        pytest.skip("FalkorDB's compact reply")
    await store.write(
        "CREATE (:Customer {id: 'c1', name: 'Ada', n: 3, x: 0.5, tags: ['a', 'b'], vip: true})"
        "-[:KNOWS {since: 1700000000000, weight: 0.25}]->(:Customer {id: 'c2', name: 'Bo'})"
    )
    return store


async def client_parsed(store: FalkorStore, query: str) -> list[dict[str, Any]]:
    """The rows as the client library parses them, then `plain`."""
    result = await store._graph.ro_query(query)
    names = [column[1] for column in result.header]
    return [{n: plain(v) for n, v in zip(names, row, strict=True)} for row in result.result_set]


@pytest.mark.parametrize("value", VALUES)
async def test_read_gives_what_the_client_library_gives(falkordb: FalkorStore, value: str) -> None:
    query = f"MATCH p = (c:Customer)-[r:KNOWS]->(o:Customer) RETURN c.id AS id, {value} AS v"
    expected = await client_parsed(falkordb, query)
    got = await falkordb.read(query)
    assert got == expected
    assert [type(row["v"]) for row in got] == [type(row["v"]) for row in expected]


async def test_statements_without_rows_or_return(falkordb: FalkorStore) -> None:
    assert await falkordb.read("MATCH (c:Customer {id: 'none'}) RETURN c.id AS id") == []
    assert await falkordb.write("MATCH (c:Customer {id: 'c1'}) SET c.seen = true") == []
    assert await falkordb.write(
        "MATCH (c:Customer {id: 'c1'}) SET c.seen = false RETURN c.seen AS seen"
    ) == [{"seen": False}]


async def test_an_error_while_running_is_a_query_error(falkordb: FalkorStore) -> None:
    with pytest.raises(QueryError):
        await falkordb.read("UNWIND [1, 0] AS x RETURN 1 / x AS y")  # after one row
