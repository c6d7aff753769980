"""The store-side statement timeout (`graph.timeouts`) on each engine: a long read is stopped
by the store and raises `StatementTimeout`, the store answers the next statement at once, and
outside a `statement_timeout` block nothing is cut short."""

from __future__ import annotations

import time

import pytest

from crm_graph.graph.errors import StatementTimeout
from crm_graph.graph.store import GraphStore
from crm_graph.graph.timeouts import current_timeout, statement_timeout

PEOPLE, TIES_EACH = 200, 25
ROWS = """
MATCH (a:Customer), (b:Customer), (c:Customer), (d:Customer)
WHERE a.id + b.id + c.id + d.id = 'x'
RETURN count(*) AS n
"""
"""200^4 rows, each evaluated: minutes on either engine. (Four hops of ties are no test on
FalkorDB: it answers them with sparse matrix products, 200 x 25^4 paths in 12 ms.)"""


@pytest.fixture
async def dense(store: GraphStore) -> GraphStore:
    await store.write(
        "UNWIND range(0, $n - 1) AS i CREATE (:Customer {id: 'T' + toString(i), country: 'GB'})",
        {"n": PEOPLE},
    )
    await store.write(
        "UNWIND $pairs AS p MATCH (a:Customer {id: p[0]}), (b:Customer {id: p[1]}) "
        "CREATE (a)-[:KNOWS]->(b)",
        {"pairs": [[f"T{i}", f"T{(i + j) % PEOPLE}"] for i in range(PEOPLE)
                   for j in range(1, TIES_EACH + 1)]},
    )  # fmt: skip
    return store


async def test_a_long_read_is_stopped_by_the_store(dense: GraphStore) -> None:
    # given a read of 1.6 billion rows, under a timeout of half a second
    started = time.perf_counter()
    with statement_timeout(0.5), pytest.raises(StatementTimeout) as raised:
        await dense.read(ROWS)
    took = time.perf_counter() - started
    # then the store stopped it (not the client giving up: the error comes from the store), and
    # answers the next statement at once
    assert "0.5 s" in str(raised.value)
    assert took < 30, took  # generous: the statement alone runs far longer without a timeout
    assert await dense.read("MATCH (c:Customer {id: 'T1'}) RETURN c.id AS id") == [{"id": "T1"}]


async def test_no_timeout_applies_outside_a_request() -> None:
    assert current_timeout() is None
    with statement_timeout(2.0):
        assert current_timeout() == 2.0
        with statement_timeout(None):
            assert current_timeout() is None
    assert current_timeout() is None
