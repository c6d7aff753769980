"""Neo4j sends the driver no notifications: the driver logged each one as a WARNING carrying the
whole statement, on almost every API request (an unknown property such as `revokedAt` before any
key is revoked, nulls skipped by an aggregation)."""

from __future__ import annotations

import logging

import pytest

from crm_graph.graph.store import GraphStore


async def test_statements_that_draw_notifications_log_nothing(
    store: GraphStore, caplog: pytest.LogCaptureFixture
) -> None:
    if store.dialect.name != "neo4j":
        pytest.skip("notifications are Neo4j's")
    # given statements the server has notifications for: an unknown property and label, and
    # an aggregation over nulls
    await store.write("CREATE (:Customer {id: 'n1'}), (:Customer {id: 'n2', score: 1.0})")
    with caplog.at_level(logging.DEBUG, logger="neo4j"):
        # when they run
        await store.read("MATCH (k:ApiKey) RETURN k.revokedAt AS revokedAt")
        await store.read("MATCH (c:NoSuchLabel) RETURN c.nosuch AS x")
        await store.read("MATCH (c:Customer) RETURN sum(c.score) AS total")
    # then the driver logged no notification
    notifications = [r for r in caplog.records if r.name.startswith("neo4j.notifications")]
    assert notifications == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
