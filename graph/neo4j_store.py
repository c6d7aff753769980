"""Neo4j through the official async driver: the production store."""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Literal

import neo4j
from neo4j import AsyncGraphDatabase, RoutingControl
from neo4j.exceptions import ClientError, Neo4jError, ServiceUnavailable

from crm_graph.graph.dialect import NEO4J, Dialect
from crm_graph.graph.errors import (
    READ_ONLY_MESSAGE,
    QueryError,
    ReadOnlyViolation,
    StatementTimeout,
    StoreUnavailable,
    UnsupportedValue,
)
from crm_graph.graph.schema import CRM_SCHEMA
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import Columns, Params, Row, SharedText, converted
from crm_graph.graph.timeouts import current_timeout
from crm_graph.graph.values import plain

DRIVER_LOGGER = "neo4j"
"""The driver's loggers (`neo4j`, `neo4j.io`, `neo4j.pool`, `neo4j.notifications`, ...) are
this one's children. At DEBUG, `neo4j.io` writes every statement with its parameters (names,
emails, phones), so the parent is held at WARNING whatever level the root logger is set to."""

NOTIFICATIONS_MIN_SEVERITY: Literal["WARNING"] = "WARNING"
NOTIFICATIONS_DISABLED: list[Literal["UNRECOGNIZED"]] = ["UNRECOGNIZED"]
"""What the server is asked to notify, each notification being logged by the driver as a
multi-line WARNING with the whole statement: not INFORMATION (performance hints), nor the
UNRECOGNIZED class (a label or property no node has yet, as on an empty database; an aggregation
skipping nulls, which `sum` and `count` over OPTIONAL MATCH do by design). Deprecations still
come: the statements are kept free of them."""


def quiet_driver_logs() -> None:
    """Keep the driver's loggers at WARNING or above (see `DRIVER_LOGGER`)."""
    logger = logging.getLogger(DRIVER_LOGGER)
    if logger.level < logging.WARNING:  # NOTSET (0) included
        logger.setLevel(logging.WARNING)


class Neo4jStore:
    """A `GraphStore` on one Neo4j database."""

    dialect: Dialect = NEO4J

    def __init__(self, driver: neo4j.AsyncDriver, database: str | None, description: str):
        self._driver = driver
        self._database = database
        self.description = description
        self.round_trips = 0

    @classmethod
    async def connect(cls, settings: StoreSettings) -> Neo4jStore:
        assert settings.url and settings.username is not None
        quiet_driver_logs()
        driver = AsyncGraphDatabase.driver(
            settings.url,
            auth=(settings.username, settings.password or ""),
            notifications_min_severity=NOTIFICATIONS_MIN_SEVERITY,
            notifications_disabled_classifications=NOTIFICATIONS_DISABLED,
        )
        store = cls(driver, settings.database, settings.description)
        try:
            await store.ping()
        except StoreUnavailable:
            await store.close()
            raise
        return store

    async def read(self, query: str, params: Params | None = None) -> list[Row]:
        return await self._run(query, params, RoutingControl.READ)

    async def write(self, query: str, params: Params | None = None) -> list[Row]:
        return await self._run(query, params, RoutingControl.WRITE)

    async def read_columns(
        self, query: str, params: Params | None = None, *, shared: SharedText | None = None
    ) -> Columns:
        records, keys = await self._execute(query, params, RoutingControl.READ)
        columns: Columns = {key: [] for key in keys}
        strings = [(shared or {}).get(key) for key in keys]
        for record in records:
            for key, pool in zip(keys, strings, strict=True):
                value = record[key]
                if not _is_plain(value):
                    raise QueryError(
                        f"read_columns takes plain values only; column {key!r} holds a "
                        f"{type(value).__name__}"
                    )
                if pool is not None and isinstance(value, str):
                    value = pool.setdefault(value, value)
                columns[key].append(value)
        return columns

    async def _run(self, query: str, params: Params | None, routing: RoutingControl) -> list[Row]:
        records, keys = await self._execute(query, params, routing)
        return await converted(records, lambda record: {key: plain(record[key]) for key in keys})

    async def _execute(
        self, query: str, params: Params | None, routing: RoutingControl
    ) -> tuple[list[Any], list[str]]:
        self.round_trips += 1
        timeout = current_timeout()
        text = self.dialect.spelled(query)
        statement = text if timeout is None else neo4j.Query(text, timeout=timeout)
        try:
            records, _, keys = await self._driver.execute_query(
                statement, dict(params or {}), database_=self._database, routing_=routing
            )
        except ClientError as e:
            if "TransactionTimedOut" in (e.code or ""):
                raise StatementTimeout(f"the statement ran over its {timeout} s") from e
            if routing is RoutingControl.READ and "AccessMode" in (e.code or ""):
                raise ReadOnlyViolation(READ_ONLY_MESSAGE) from e
            raise QueryError(e.message or str(e)) from e
        except (ServiceUnavailable, OSError) as e:
            raise StoreUnavailable(f"{self.description}: {e}") from e
        except Neo4jError as e:
            raise QueryError(e.message or str(e)) from e
        except OverflowError as e:  # the driver packs integers in 64 bits
            raise UnsupportedValue("the store cannot take an integer beyond 64 bits") from e
        except UnicodeEncodeError as e:
            raise UnsupportedValue("the store cannot take text with a lone surrogate") from e
        except (ValueError, TypeError) as e:  # a parameter of a type Bolt has no form for
            raise UnsupportedValue("the store cannot take a value of that type") from e
        return records, keys

    def audit_graph(self) -> Neo4jStore:
        """The audit trail lives in this database: Neo4j's reads take no lock that a write
        waits for (`GraphStore.audit_graph`)."""
        return self

    async def bootstrap(self) -> None:
        """Create the missing constraints and indexes (and only those: one read when the schema
        is complete, instead of a schema transaction per step)."""
        existing = await self._existing_schema()
        for step in self.dialect.schema_statements(CRM_SCHEMA):
            if (step.kind, step.label, step.prop) in existing:
                continue
            assert isinstance(step.statement, str)
            await self.write(step.statement)

    async def _existing_schema(self) -> set[tuple[str, str, str]]:
        rows = await self.read(
            "SHOW INDEXES YIELD type, entityType, labelsOrTypes, properties, owningConstraint "
            "WHERE entityType = 'NODE' AND size(labelsOrTypes) = 1 AND size(properties) = 1 "
            "RETURN type, labelsOrTypes[0] AS label, properties[0] AS prop, "
            "owningConstraint IS NOT NULL AS unique"
        )
        return {
            ("unique" if row["unique"] else "index", row["label"], row["prop"])
            for row in rows
            if row["type"] == "RANGE"
        }

    async def ping(self) -> None:
        try:
            await self._driver.verify_connectivity()
        except Exception as e:
            raise StoreUnavailable(f"{self.description} does not answer: {e}") from e

    async def server_version(self) -> str:
        info = await self._driver.get_server_info()
        return f"{info.agent} (protocol {'.'.join(map(str, info.protocol_version))})"

    async def delete_graph(self) -> None:
        """Delete every node and relationship, 10,000 nodes per transaction; constraints and
        indexes stay (`bootstrap` finds them there)."""
        while True:
            rows = await self.write(
                "MATCH (n) WITH n LIMIT 10000 DETACH DELETE n RETURN count(*) AS deleted"
            )
            if rows[0]["deleted"] < 10000:
                return

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._driver.close()


def _is_plain(value: Any) -> bool:
    """Text, a number, a boolean, null, or a list of those (lists nested too)."""
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str)
