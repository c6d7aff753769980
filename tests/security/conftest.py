"""Shared by the security tests: the `shop` graph, a snapshot of the whole graph (to prove that
hostile input changed nothing), what no answer to hostile input may contain, and a count of the
fuzz cases each property-based test ran (printed at the end of the run)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from crm_graph.graph.store import GraphStore
from tests.api.conftest import shop  # noqa: F401  (the API tests' twelve-customer graph)

FUZZ_CASES: Counter[str] = Counter()
"""Examples run per property-based test, filled by the tests, reported by the summary hook."""


@pytest.fixture
def fuzz_case(request: pytest.FixtureRequest) -> Iterator[Callable[[], None]]:
    """`fuzz_case()` counts one example of this test in `FUZZ_CASES`; after the test, the count
    must be positive (a property test whose strategy never draws would pass vacuously)."""
    name = request.node.originalname
    FUZZ_CASES[name] = 0

    def tick() -> None:
        FUZZ_CASES[name] += 1

    yield tick
    assert FUZZ_CASES[name] > 0, f"{name} ran no fuzz case"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FUZZ_CASES:
        total = sum(FUZZ_CASES.values())
        terminalreporter.write_sep("-", f"security fuzz: {total} cases")
        for name, count in sorted(FUZZ_CASES.items()):
            terminalreporter.write_line(f"{count:6d}  {name}")


# -- the graph, before and after -------------------------------------------------------------


@dataclass(frozen=True)
class GraphState:
    """Every node (but API keys, whose `lastUsedAt` moves with use, and audit entries, which
    every request reading customers adds) and every relationship with
    all their properties, as canonical JSON lines; and who they are (labels and id; type and
    ends), to tell a change from a deletion."""

    nodes: frozenset[str]
    relationships: frozenset[str]
    node_keys: frozenset[str]
    relationship_keys: frozenset[str]

    @property
    def counts(self) -> tuple[int, int]:
        return len(self.nodes), len(self.relationships)


def _canonical(row: Any) -> str:
    return json.dumps(row, sort_keys=True, default=str)


async def graph_state(store: GraphStore) -> GraphState:
    nodes = await store.read(
        # not the outbox's counter: every acknowledged write raises it (its events are kept)
        "MATCH (n) WHERE NOT n:ApiKey AND NOT n:AuditEntry AND NOT n:EventSequence "
        "RETURN labels(n) AS labels, properties(n) AS props"
    )
    relationships = await store.read(
        "MATCH (a)-[r]->(b) RETURN type(r) AS type, labels(a) AS fromLabels, a.id AS fromId, "
        "labels(b) AS toLabels, b.id AS toId, properties(r) AS props"
    )
    state = GraphState(
        nodes=frozenset(_canonical(row) for row in nodes),
        relationships=frozenset(_canonical(row) for row in relationships),
        node_keys=frozenset(_canonical([r["labels"], r["props"].get("id")]) for r in nodes),
        relationship_keys=frozenset(
            _canonical({k: v for k, v in r.items() if k != "props"}) for r in relationships
        ),
    )
    assert len(state.nodes) == len(nodes), "two nodes with the same labels and properties"
    return state


@pytest.fixture
async def scored_shop(shop: None, store: GraphStore) -> None:  # noqa: F811
    """The shop with what `crm-graph train` writes for the network fields: PageRank and a
    community on every customer (c00-c05 in community 1, the others in 2), and an extra
    property (`loyalty`) that only `attributes` shows."""
    await store.write(
        "MATCH (c:Customer) SET c.mlPagerank = 1.0 / (1 + toInteger(substring(c.id, 1))), "
        "c.mlCommunity = CASE WHEN c.id < 'c06' THEN 1 ELSE 2 END, c.loyalty = 'gold'"
    )


# -- what no answer to hostile input may contain ---------------------------------------------

ANSWER_STATUSES = frozenset({200, 400, 413})
"""200 (data and/or coded errors), 400 (a body that is not a GraphQL request), 413 (too big)."""

LEAK_MARKERS = (
    "Traceback", 'File "', 'File \\"', "errMsg", "errCtx", "Invalid input",
    "ResponseError", "QueryError", "StoreError", "redis", "falkordb", "FalkorDB", "neo4j",
    "CYPHER", "MATCH", "UNWIND", "RETURN", "CALL {", "OPTIONAL", "DETACH", "properties(",
    "toLower(", ":Customer", "sortKey", "$afterKey", "$ids", "$rows",
)  # fmt: skip
"""Words of Python tracebacks, store errors and our statements. One is a leak when the answer
has it and the request had not (an error may quote the caller's own input back)."""

_BUILDER_PARAMETER = re.compile(r"\$f\d+\b")


def assert_safe_answer(response: httpx.Response, sent: str) -> dict[str, Any] | None:
    """Check one answer to a hostile request (`sent`: the request body as text); return the
    parsed body when it is JSON.

    The status is documented, never a 500; every GraphQL error has `extensions.code` and none is
    INTERNAL_SERVER_ERROR (an error we did not foresee); nothing of a traceback, a store error
    or a statement appears that the caller did not send."""
    assert response.status_code in ANSWER_STATUSES, (response.status_code, response.text[:500])
    text = response.text
    leaked = [m for m in LEAK_MARKERS if m in text and m not in sent]
    leaked += [m for m in _BUILDER_PARAMETER.findall(text) if m not in sent]
    assert not leaked, (leaked, text[:1000])
    if not response.headers.get("content-type", "").startswith("application/json"):
        assert response.status_code == 400, (response.status_code, text[:500])
        return None
    body = response.json()
    assert isinstance(body, dict), body
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code, ("an error without extensions.code", error)
        assert code != "INTERNAL_SERVER_ERROR", ("an unexpected error", error)
    if response.status_code == 200:
        assert "data" in body or body.get("errors"), body
    return body
