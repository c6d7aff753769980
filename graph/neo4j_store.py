"""Neo4j through the official async driver: the production store."""

from __future__ import annotations

import contextlib
from typing import Any

import neo4j
from neo4j import AsyncGraphDatabase, RoutingControl
from neo4j.exceptions import ClientError, Neo4jError, ServiceUnavailable

from crm_graph.graph.dialect import NEO4J, Dialect
from crm_graph.graph.errors import QueryError, ReadOnlyViolation, StoreUnavailable
from crm_graph.graph.schema import CRM_SCHEMA
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import Columns, Params, Row, SharedText
from crm_graph.graph.values import plain


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
        driver = AsyncGraphDatabase.driver(
            settings.url,
            auth=(settings.username, settings.password or ""),
            # The server sends no notifications: the driver logged each as a WARNING with the
            # whole statement (unknown properties such as `revokedAt`, nulls in aggregations),
            # 1.5 a request on the 360, which cost 13% of the API's requests/s.
            notifications_min_severity="OFF",
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
        return [{key: plain(record[key]) for key in keys} for record in records]

    async def _execute(
        self, query: str, params: Params | None, routing: RoutingControl
    ) -> tuple[list[Any], list[str]]:
        self.round_trips += 1
        try:
            records, _, keys = await self._driver.execute_query(
                query, dict(params or {}), database_=self._database, routing_=routing
            )
        except ClientError as e:
            if routing is RoutingControl.READ and "AccessMode" in (e.code or ""):
                raise ReadOnlyViolation(f"the query tries to write: {e.message}") from e
            raise QueryError(e.message or str(e)) from e
        except (ServiceUnavailable, OSError) as e:
            raise StoreUnavailable(f"{self.description}: {e}") from e
        except Neo4jError as e:
            raise QueryError(e.message or str(e)) from e
        return records, keys

    async def bootstrap(self) -> None:
        for step in self.dialect.schema_statements(CRM_SCHEMA):
            assert isinstance(step.statement, str)
            await self.write(step.statement)

    async def ping(self) -> None:
        try:
            await self._driver.verify_connectivity()
        except Exception as e:
            raise StoreUnavailable(f"{self.description} does not answer: {e}") from e

    async def server_version(self) -> str:
        info = await self._driver.get_server_info()
        return f"{info.agent} (protocol {'.'.join(map(str, info.protocol_version))})"

    async def delete_graph(self) -> None:
        # CALL ... IN TRANSACTIONS needs an auto-commit transaction, not execute_query's.
        self.round_trips += 1
        async with self._driver.session(database=self._database) as session:
            result = await session.run(
                "MATCH (n) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
            )
            await result.consume()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._driver.close()


def _is_plain(value: Any) -> bool:
    """Text, a number, a boolean, null, or a list of those (lists nested too)."""
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str)
