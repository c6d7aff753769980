"""Neo4jStore without a Neo4j server: what the store asks of the driver, with a fake driver that
records it. With NEO4J_URI set (`make test-all`), every store, loader and API test also runs
against a real Neo4j through the `store` fixture."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from neo4j import RoutingControl
from neo4j.exceptions import ClientError, ServiceUnavailable

from crm_graph.graph import customer_reads
from crm_graph.graph.dialect import FALKORDB, NEO4J
from crm_graph.graph.errors import QueryError, ReadOnlyViolation, StoreUnavailable
from crm_graph.graph.neo4j_store import Neo4jStore
from crm_graph.graph.schema import CRM_SCHEMA
from crm_graph.graph.store import GraphStore


class FakeRecord(dict[str, Any]):
    pass


class FakeDriver:
    """Records what the store asks of the driver and answers from a script."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[dict[str, Any]] = []

    async def execute_query(self, query: str, params: dict[str, Any], **kwargs: Any) -> Any:
        self.calls.append({"query": query, "params": params, **kwargs})
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def client_error(code: str, message: str) -> ClientError:
    error = ClientError(message)
    error._neo4j_code = code  # type: ignore[attr-defined]
    error._message = message  # type: ignore[attr-defined]
    return error


async def test_reads_route_to_readers_and_return_plain_rows() -> None:
    driver = FakeDriver(([FakeRecord(id="c1", n=3)], None, ["id", "n"]))
    store = Neo4jStore(driver, "crm", "test")  # type: ignore[arg-type]
    rows = await store.read("MATCH (c:Customer) RETURN c.id AS id, 3 AS n", {"x": 1})
    assert rows == [{"id": "c1", "n": 3}]
    assert driver.calls[0]["routing_"] is RoutingControl.READ
    assert driver.calls[0]["database_"] == "crm"
    assert driver.calls[0]["params"] == {"x": 1}
    assert store.round_trips == 1


async def test_bulk_reads_route_to_readers_and_return_columns_of_plain_values() -> None:
    records = [FakeRecord(id="c1", n=3), FakeRecord(id="c2", n=None)]
    driver = FakeDriver((records, None, ["id", "n"]))
    store = Neo4jStore(driver, "crm", "test")  # type: ignore[arg-type]
    assert await store.read_columns("RETURN 1", {"x": 1}) == {"id": ["c1", "c2"], "n": [3, None]}
    ids: dict[str, str] = {"c2": "c2"}
    shared = await store.read_columns("RETURN 1", shared={"id": ids, "n": {}})
    assert shared == {"id": ["c1", "c2"], "n": [3, None]}
    assert shared["id"][1] is ids["c2"] and sorted(ids) == ["c1", "c2"]
    assert driver.calls[0]["routing_"] is RoutingControl.READ
    nested = Neo4jStore(FakeDriver(([FakeRecord(m={"a": 1})], None, ["m"])), None, "test")  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="column 'm' holds a dict"):
        await nested.read_columns("RETURN {a: 1} AS m")


async def test_a_write_in_a_read_is_a_read_only_violation() -> None:
    error = client_error("Neo.ClientError.Statement.AccessMode", "Writing in read access mode")
    store = Neo4jStore(FakeDriver(error), None, "test")  # type: ignore[arg-type]
    with pytest.raises(ReadOnlyViolation, match="tries to write"):
        await store.read("CREATE (:Customer)")


async def test_driver_errors_are_wrapped_with_their_cause() -> None:
    syntax = client_error("Neo.ClientError.Statement.SyntaxError", "Invalid input")
    store = Neo4jStore(FakeDriver(syntax), None, "test")  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="Invalid input") as info:
        await store.write("MATCH (")
    assert info.value.__cause__ is syntax
    down = Neo4jStore(FakeDriver(ServiceUnavailable("gone")), None, "neo")  # type: ignore[arg-type]
    with pytest.raises(StoreUnavailable):
        await down.write("RETURN 1")


def test_neo4j_schema_is_idempotent_ddl() -> None:
    steps = NEO4J.schema_statements(CRM_SCHEMA)
    statements = [s.statement for s in steps]
    assert (
        "CREATE CONSTRAINT customer_id_unique IF NOT EXISTS FOR (n:Customer) REQUIRE n.id IS UNIQUE"
        in statements
    )
    assert (
        "CREATE INDEX sourcerecord_emailkey IF NOT EXISTS FOR (n:SourceRecord) ON (n.emailKey)"
        in statements
    )
    assert all("IF NOT EXISTS" in s for s in statements)
    # and the key `serialized` statements lock (Neo4j only: FalkorDB runs one write at a time)
    assert statements[-1] == (
        "CREATE CONSTRAINT writelock_name_unique IF NOT EXISTS "
        "FOR (n:WriteLock) REQUIRE n.name IS UNIQUE"
    )
    assert len(steps) == len(CRM_SCHEMA.unique) + len(CRM_SCHEMA.indexed) + 1


def test_subqueries_importing_with_with_are_spelled_with_a_scope_on_neo4j() -> None:
    statement = (
        "MATCH (c:Customer) CALL { WITH c OPTIONAL MATCH (c)-[:KNOWS]-(o1:Customer) "
        "CALL { WITH o1 RETURN o1.id AS v2 } WITH c, o1, v2 RETURN count(o1) > 0 AS v3 } "
        "CALL { WITH c WHERE c.id > 'a' RETURN 1 AS v4 } RETURN c"
    )
    assert NEO4J.spelled(statement) == (
        "MATCH (c:Customer) CALL (c) { OPTIONAL MATCH (c)-[:KNOWS]-(o1:Customer) "
        "CALL (o1) { RETURN o1.id AS v2 } WITH c, o1, v2 RETURN count(o1) > 0 AS v3 } "
        "CALL { WITH c WHERE c.id > 'a' RETURN 1 AS v4 } RETURN c"  # not only an import
    )
    assert FALKORDB.spelled(statement) == statement


async def test_the_server_notifies_nothing_for_what_the_product_sends(
    store: GraphStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Unknown labels and properties on an empty database, sums skipping nulls, subqueries:
    Neo4j notified each with a multi-line WARNING holding the whole statement."""
    if store.dialect is not NEO4J:
        pytest.skip("server notifications are Neo4j's")
    caplog.set_level(logging.DEBUG)
    spec = {"totalSpend": {"gte": 5}, "knows": {"boughtInCategory": "Toys"}}
    query, params = customer_reads._page_query(spec, "TOTAL_SPEND", True, None, 10)
    assert await store.read(query, params) == []
    await store.read("MATCH (n:NoSuchLabel) RETURN n.noSuchProperty AS x")
    await store.write("CREATE (:Customer {id: 'a'})")
    await store.read(query, params)
    assert [r.getMessage()[:200] for r in caplog.records if r.name.startswith("neo4j")] == []
