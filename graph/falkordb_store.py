"""FalkorDB over the Redis protocol: the embedded default and an external server."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import redis
import redis.asyncio
from falkordb.asyncio import FalkorDB
from falkordb.asyncio.query_result import QueryResult

from crm_graph.graph import audit
from crm_graph.graph.dialect import FALKORDB, Dialect
from crm_graph.graph.embedded import PLAN_CACHE_SIZE, EmbeddedServer, new_client_name
from crm_graph.graph.errors import (
    READ_ONLY_MESSAGE,
    QueryError,
    ReadOnlyViolation,
    StatementTimeout,
    StoreUnavailable,
    UnsupportedValue,
)
from crm_graph.graph.schema import AUDIT_SCHEMA, MAIN_SCHEMA, GraphSchema
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import Columns, Params, Row, SharedText, converted
from crm_graph.graph.timeouts import current_timeout
from crm_graph.graph.values import plain

log = logging.getLogger(__name__)

AUDIT_GRAPH_SUFFIX = "__audit"
"""The audit trail's graph is named after the main one with this suffix (`audit_graph`)."""

# FalkorDB's value kinds in a compact reply (falkordb.asyncio.query_result.ResultSetScalarTypes)
_NULL, _STRING, _INTEGER, _BOOLEAN, _DOUBLE, _ARRAY, _MAP = 1, 2, 3, 4, 5, 6, 10


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _ClientParses(Exception):
    """A value the one-loop decoder leaves to the client library: a node, relationship, path,
    point, vector or temporal value."""


def _plain_list(items: list[list[Any]], strings: dict[str, str] | None = None) -> list[Any]:
    """A compact-reply array of plain values (or arrays of them) as a Python list: a list value
    or a column (`read_columns`); `QueryError` for anything but plain values. `strings`:
    top-level text values are looked up there and kept as the one found (or added)."""
    out: list[Any] = []
    for kind, value in items:
        if kind == _STRING:
            text = _text(value)
            out.append(text if strings is None else strings.setdefault(text, text))
        elif kind == _INTEGER:
            out.append(int(value))
        elif kind == _DOUBLE:
            out.append(float(value))
        elif kind == _NULL:
            out.append(None)
        elif kind == _BOOLEAN:
            out.append(value in (b"true", "true"))
        elif kind == _ARRAY:
            out.append(_plain_list(value))
        else:
            raise QueryError(f"read_columns takes plain values only (text, numbers, booleans, "
                             f"null and lists of them), not FalkorDB type {kind}")  # fmt: skip
    return out


def _values(items: list[list[Any]]) -> list[Any]:
    """A compact-reply array of plain values, lists and maps (a result row, or a list value) as
    a Python list; `_ClientParses` for any other kind. `read`'s decoder: maps go straight into
    dicts, without slices and zips (a 360's reply decodes in less than half the time). Text
    arrives as `str` (FalkorDB's client always decodes responses), integers as `int`."""
    out: list[Any] = []
    append = out.append
    for kind, value in items:
        if kind == _STRING:
            append(value if value.__class__ is str else _text(value))
        elif kind == _INTEGER:
            append(value)
        elif kind == _MAP:
            append(_map(value))
        elif kind == _DOUBLE:
            append(float(value))
        elif kind == _NULL:
            append(None)
        elif kind == _ARRAY:
            append(_values(value))
        elif kind == _BOOLEAN:
            append(value in (b"true", "true"))
        else:
            raise _ClientParses
    return out


def _map(pairs: list[Any]) -> dict[str, Any]:
    """A compact-reply map (key, [kind, value], key, [kind, value], ...) as a dict."""
    found: dict[str, Any] = {}
    keys_and_values = iter(pairs)
    for key, (kind, value) in zip(keys_and_values, keys_and_values, strict=True):
        if kind == _STRING:
            found[key] = value if value.__class__ is str else _text(value)
        elif kind == _INTEGER:
            found[key] = value
        elif kind == _MAP:
            found[key] = _map(value)
        elif kind == _DOUBLE:
            found[key] = float(value)
        elif kind == _NULL:
            found[key] = None
        elif kind == _ARRAY:
            found[key] = _values(value)
        elif kind == _BOOLEAN:
            found[key] = value in (b"true", "true")
        else:
            raise _ClientParses
    return found


BUSY_WAIT_SECONDS = 120.0
"""How long a statement is retried while the server answers BUSY (see `_while_busy`)."""


async def _while_busy(send: Callable[[], Awaitable[Any]], *, wait: float | None = None) -> Any:
    """`send()`, sent again while the server answers BUSY, for up to `wait` seconds.

    Redis answers "BUSY preparing to fork" while FalkorDB waits for its running queries before
    forking (an AOF rewrite, which Redis starts by itself when the append-only file has doubled;
    at 1M customers one came during a 50-minute load and failed it). A BUSY command was not
    run, so sending it again is safe for writes too. Other errors pass at once; still busy after
    `wait` seconds (default `BUSY_WAIT_SECONDS`), the last BUSY error is raised."""
    deadline = time.monotonic() + (BUSY_WAIT_SECONDS if wait is None else wait)
    pause = 0.01
    while True:
        try:
            return await send()
        except redis.ResponseError as e:
            if not str(e).startswith("BUSY") or time.monotonic() + pause > deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, 1.0)


def _timeout_arguments() -> tuple[str, ...]:
    """`TIMEOUT <ms>` when the statement runs for an API request (`graph.timeouts`)."""
    seconds = current_timeout()
    return () if seconds is None else ("TIMEOUT", str(max(1, round(seconds * 1000))))


def _raise_reply_error(reply: list[Any]) -> None:
    """A statement that failed while running answers with the error as its last element (the
    client library's check, which `execute_command` leaves to the caller)."""
    if reply and isinstance(reply[0], redis.ResponseError):
        raise reply[0]
    if reply and isinstance(reply[-1], redis.ResponseError):
        raise reply[-1]


class FalkorStore:
    """A `GraphStore` on one FalkorDB graph (and the audit trail's graph beside it)."""

    dialect: Dialect = FALKORDB

    def __init__(
        self,
        db: FalkorDB,
        graph_name: str,
        description: str,
        embedded: EmbeddedServer | None = None,
        client_name: str = "",
    ) -> None:
        self._db = db
        self._graph = db.select_graph(graph_name)
        self.graph_name = graph_name
        self.description = description
        self.embedded = embedded
        self.client_name = client_name
        self.round_trips = 0
        self._audit: FalkorStore | None = None
        self._owner: FalkorStore | None = None
        """The main graph's store, on the audit trail's: it owns the connection, and counts
        this one's round trips with its own."""

    @classmethod
    async def connect(cls, settings: StoreSettings) -> FalkorStore:
        embedded: EmbeddedServer | None = None
        if settings.kind == "embedded":
            embedded = EmbeddedServer(settings.data_dir, appendfsync=settings.appendfsync)
            record = await asyncio.to_thread(embedded.acquire)
            kwargs: dict[str, Any] = record.connection_kwargs()
        else:
            kwargs = {
                "host": settings.host,
                "port": settings.port,
                "username": settings.username,
                "password": settings.password,
            }
        name = new_client_name()
        db = FalkorDB(**kwargs, client_name=name, socket_connect_timeout=10)
        store = cls(db, settings.graph_name, settings.description, embedded, name)
        try:
            await store.ping()
        except StoreUnavailable:
            await store.close()
            raise
        await store._check_plan_cache()
        return store

    async def _check_plan_cache(self) -> None:
        """Warn when the server keeps the plans of fewer statements than `PLAN_CACHE_SIZE`
        (an external FalkorDB started with its default of 25, or an embedded server started by
        an older crm-graph and still running): statements then get planned again and again."""
        try:
            reply = await self._db.connection.execute_command("GRAPH.CONFIG", "GET", "CACHE_SIZE")
            size = int(reply[1])
        except (redis.RedisError, OSError, IndexError, TypeError, ValueError):
            return  # a user without GRAPH.CONFIG, an unexpected reply: nothing to say
        if size < PLAN_CACHE_SIZE:
            remedy = (
                "stop every crm-graph process using this data directory: the next start keeps "
                f"{PLAN_CACHE_SIZE}"
                if self.embedded is not None
                else f"start FalkorDB with --loadmodule falkordb.so CACHE_SIZE {PLAN_CACHE_SIZE}"
            )
            log.warning(
                "%s keeps the execution plans of %d statements (CACHE_SIZE); crm-graph sends "
                "more distinct statements than that, which are then planned again each time: %s",
                self.description, size, remedy,
            )  # fmt: skip

    def audit_graph(self) -> FalkorStore:
        """The audit trail's graph (`<graph>__audit`), on the same server and connection.

        FalkorDB locks a graph for each write, and a write waiting for the lock goes before
        every read asked after it: a write queued behind a long read (a request held to the
        statement timeout) held every read of that graph until the long one ended (a point
        read queued behind a `CREATE` took 1.33 s instead of 0.00 s while a 2 s read ran). The
        server writes audit entries every second on its own, so in the customers' graph each
        flush made one slow request everyone's. In a graph of their own they wait for no read
        of the customers' and hold none; the server process and its append-only file are the
        same, so they have the same crash guarantees. A store opened on the audit trail's graph
        itself (`CRM_GRAPH_GRAPH=crm__audit crm-graph query ...`) is its own."""
        if self._owner is not None or self.graph_name.endswith(AUDIT_GRAPH_SUFFIX):
            return self
        if self._audit is None:
            name = self.graph_name + AUDIT_GRAPH_SUFFIX
            description = f"{self.description} (audit trail)"
            trail = FalkorStore(self._db, name, description, None, self.client_name)
            trail._owner = self
            self._audit = trail
        return self._audit

    def _count(self) -> None:
        self.round_trips += 1
        if self._owner is not None:
            self._owner.round_trips += 1

    async def read(self, query: str, params: Params | None = None) -> list[Row]:
        return await self._run(query, params, read_only=True)

    async def write(self, query: str, params: Params | None = None) -> list[Row]:
        return await self._run(query, params, read_only=False)

    async def _run(self, query: str, params: Params | None, *, read_only: bool) -> list[Row]:
        """The compact reply is decoded here in one loop when it holds only plain values and
        maps (every read the API makes); one holding nodes, relationships, paths or other kinds
        goes through the client library's parser, which names labels and properties."""
        self._count()
        command = "GRAPH.RO_QUERY" if read_only else "GRAPH.QUERY"
        with self._errors(params):
            statement = self._graph._build_params_header(dict(params or {})) + query
            timeout = _timeout_arguments()
            reply = await _while_busy(
                lambda: self._graph.execute_command(
                    command, self.graph_name, statement, "--compact", *timeout
                )
            )
            _raise_reply_error(reply)
            if len(reply) < 3:  # statistics only: a statement without RETURN
                return []
            names = [_text(column[1]) for column in reply[0]]
            try:
                return await converted(
                    reply[1], lambda row: dict(zip(names, _values(row), strict=True))
                )
            except _ClientParses:
                result = QueryResult(self._graph)
                await result.parse(reply)
        return [
            {name: plain(value) for name, value in zip(names, row, strict=True)}
            for row in result.result_set
        ]

    async def read_columns(
        self, query: str, params: Params | None = None, *, shared: SharedText | None = None
    ) -> Columns:
        """See `GraphStore.read_columns`. The compact reply is decoded here, a column at a time
        in one loop: the client library parses each value with its own coroutine, which made the
        analytics read of 1M order lines several times slower than the store's answer. A text of
        a `shared` column that was met before is dropped as soon as it is decoded, so the strings
        kept are not scattered among freed ones (sharing them afterwards freed no memory)."""
        self._count()
        statement = self._graph._build_params_header(dict(params or {})) + query
        with self._errors(params):
            reply = await _while_busy(
                lambda: self._graph.execute_command(
                    "GRAPH.RO_QUERY", self.graph_name, statement, "--compact"
                )
            )
            _raise_reply_error(reply)
        if len(reply) < 3:  # a statement without RETURN answers with statistics only
            return {}
        names = [_text(column[1]) for column in reply[0]]
        rows = reply[1]
        if any(len(row) != len(names) for row in rows):
            raise QueryError(f"a row of the reply does not have the {len(names)} columns named")
        shared = shared or {}
        return {
            name: _plain_list([row[j] for row in rows], strings=shared.get(name))
            for j, name in enumerate(names)
        }

    @contextlib.contextmanager
    def _errors(self, params: Params | None) -> Iterator[None]:
        """The store's errors for what the client raises."""
        try:
            yield
        except redis.ResponseError as e:
            message = str(e)
            if "timed out" in message.lower():
                raise StatementTimeout(f"the statement ran over its {current_timeout()} s") from e
            if "read-only" in message:
                raise ReadOnlyViolation(READ_ONLY_MESSAGE) from e
            unsupported = _unsupported(params)  # looked for only when the server refused
            if unsupported:
                raise UnsupportedValue(f"the store cannot take {unsupported}") from e
            raise QueryError(message) from e
        except UnicodeEncodeError as e:
            raise UnsupportedValue("the store cannot take text with a lone surrogate") from e
        except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
            raise StoreUnavailable(f"{self.description}: {e}") from e

    async def bootstrap(self) -> None:
        """Create the missing indexes and unique keys (and only those).

        On the embedded server, creating any of them is followed by an AOF rewrite, so that the
        index definitions live in the AOF's RDB base: FalkorDB replays an append-only log whose
        indexes were created in the log itself without them (every MERGE a label scan), which
        made a restart after 100k customers take minutes instead of seconds.
        """
        created = await self._create_schema(MAIN_SCHEMA)
        trail = self.audit_graph()
        created += await trail._create_schema(AUDIT_SCHEMA)
        moved = await audit.move_entries(self, trail)
        if moved:
            log.info("audit: %d entries moved to the audit trail's graph %r", moved,
                     trail.graph_name)  # fmt: skip
        if created and self.embedded is not None:
            await self.compact()

    async def _create_schema(self, schema: GraphSchema) -> int:
        """Create the missing indexes and unique keys of `schema` in this graph; how many."""
        existing = await self._existing_schema()
        created = 0
        for step in self.dialect.schema_statements(schema):
            if (step.kind, step.label, step.prop) in existing:
                continue
            try:
                if isinstance(step.statement, tuple):
                    args = [self.graph_name if a == "{graph}" else a for a in step.statement]
                    self._count()
                    await _while_busy(functools.partial(self._db.connection.execute_command, *args))
                else:
                    await self.write(step.statement)
                created += 1
            except (redis.ResponseError, QueryError) as e:
                if "already" not in str(e):
                    raise QueryError(f"schema bootstrap failed on {step.statement!r}: {e}") from e
        return created

    async def _existing_schema(self) -> set[tuple[str, str, str]]:
        found: set[tuple[str, str, str]] = set()
        try:
            indexes = await self.read("CALL db.indexes() YIELD label, properties RETURN *")
            constraints = await self.read(
                "CALL db.constraints() YIELD type, label, properties RETURN *"
            )
        except QueryError:  # a graph that does not exist yet has neither
            return found
        for row in indexes:
            found.update(("index", row["label"], prop) for prop in row["properties"])
        for row in constraints:
            if row["type"] == "UNIQUE" and len(row["properties"]) == 1:
                found.add(("unique", row["label"], row["properties"][0]))
        return found

    async def compact(self) -> None:
        """Rewrite the append-only file (graph state into its RDB base) and wait for it."""
        connection = self._db.connection
        with contextlib.suppress(redis.ResponseError):  # "already in progress": wait for it
            await connection.execute_command("BGREWRITEAOF")
        while True:
            info = await connection.info("persistence")
            if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
                return
            await asyncio.sleep(0.02)

    async def ping(self) -> None:
        try:
            await self._db.connection.ping()
        except (redis.RedisError, OSError) as e:
            raise StoreUnavailable(f"{self.description} does not answer: {e}") from e

    async def server_version(self) -> str:
        info = await self._db.connection.info("server")
        modules = await self._db.connection.execute_command("MODULE", "LIST")
        graph_version = ""
        for module in modules:
            fields = dict(zip(module[::2], module[1::2], strict=False))
            name = fields.get(b"name", fields.get("name"))
            if name in (b"graph", "graph"):
                number = int(fields.get(b"ver", fields.get("ver")) or 0)
                graph_version = f"{number // 10000}.{number // 100 % 100}.{number % 100}"
        return f"FalkorDB {graph_version} on Redis {info.get('redis_version', '?')}"

    async def delete_graph(self) -> None:
        """Drop every node and relationship of this graph and of its audit trail's (tests and
        `crm-graph reset`)."""
        with contextlib.suppress(redis.ResponseError):
            await self._graph.delete()
        trail = self.audit_graph()
        if trail is not self:
            await trail.delete_graph()

    async def close(self) -> None:
        if self._owner is not None:
            return  # the main graph's store owns the connection
        with contextlib.suppress(Exception):
            await self._db.connection.aclose()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.release, self.client_name)
            self.embedded = None


def _unsupported(value: Any) -> str | None:
    """What in a parameter FalkorDB cannot take, if anything. The client writes parameters into
    the statement's `CYPHER name=value` header: the server reads the header as a C string, so a
    NUL ends it, and it has no literal for a number that is not finite."""
    if isinstance(value, str):
        return "text with the NUL character (U+0000)" if "\x00" in value else None
    if isinstance(value, float):
        return None if math.isfinite(value) else "a number that is not finite"
    if isinstance(value, Mapping):
        items: Any = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple):
        items = value
    else:
        return None
    return next((found for item in items if (found := _unsupported(item))), None)
