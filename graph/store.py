"""The store protocol every part of crm-graph talks to, and the factory that opens one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from crm_graph.graph import money
from crm_graph.graph.dialect import Dialect
from crm_graph.graph.settings import StoreSettings

Row = dict[str, Any]
T = TypeVar("T")
Params = Mapping[str, Any]
SharedText = Mapping[str, dict[str, str]]
"""Column name -> the strings met so far in it (see `GraphStore.read_columns`)."""
Columns = dict[str, list[Any]]
"""A result as one list of values per RETURN column, in the RETURN order."""

ROWS_PER_TURN = 1000
"""Rows of a reply converted to Python before the event loop is given a turn (`converted`): the
14,400 rows of a request within the cost maximum (ties of ties) held the loop for the whole
conversion otherwise, other requests waiting."""

_Raw = TypeVar("_Raw")


async def converted(rows: Sequence[_Raw], convert: Callable[[_Raw], Row]) -> list[Row]:
    """`[convert(row) for row in rows]`, the event loop given a turn every `ROWS_PER_TURN`."""
    if len(rows) <= ROWS_PER_TURN:
        return [convert(row) for row in rows]
    out: list[Row] = []
    for start in range(0, len(rows), ROWS_PER_TURN):
        if start:
            await asyncio.sleep(0)
        out.extend(convert(row) for row in rows[start : start + ROWS_PER_TURN])
    return out


class GraphStore(Protocol):
    """A Cypher graph store.

    `write` runs a statement that may change the graph (atomically: one statement, one
    transaction on both engines); `read` runs one that must not, and the engine refuses it if it
    tries. Both return rows as dicts keyed by the RETURN column names, with plain Python values
    (nodes and relationships become dicts of their properties).
    """

    dialect: Dialect
    description: str
    round_trips: int
    """Statements sent since the store was opened: tests use it to prove bounded round trips."""

    async def read(self, query: str, params: Params | None = None) -> list[Row]: ...

    async def write(self, query: str, params: Params | None = None) -> list[Row]: ...

    async def read_columns(
        self, query: str, params: Params | None = None, *, shared: SharedText | None = None
    ) -> Columns:
        """`read` for bulk results of plain values (text, numbers, booleans, null, and lists of
        them), as columns: what the analytics readers use to take hundreds of thousands of rows.
        A node, relationship, path or map among the values is refused with `QueryError`.

        `shared` maps column names to dicts of text: each text value of such a column is kept
        as one string, the first equal one met (the dict fills as rows are decoded; pass the
        same dict to several columns or statements to share across them). Ids that repeat in a
        million rows then cost one string each instead of one per row."""
        ...

    def audit_graph(self) -> GraphStore:
        """The store holding the audit trail's entries (`graph.audit`): on FalkorDB a graph of
        its own beside this one, so that the server's audit writes wait for no read of the
        customers' graph; on Neo4j, which has no such lock, this store itself."""
        ...

    async def bootstrap(self) -> None:
        """Create unique keys and indexes; idempotent."""
        ...

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the store answers."""
        ...

    async def server_version(self) -> str: ...

    async def close(self) -> None: ...


async def open_store(settings: StoreSettings, *, bootstrap: bool = True) -> GraphStore:
    """Open the store the settings name (starting the embedded server if needed), and put the
    settings' currency in force (graph/money.py)."""
    money.use_currency(settings.currency)
    store: GraphStore
    if settings.kind == "neo4j":
        from crm_graph.graph.neo4j_store import Neo4jStore

        store = await Neo4jStore.connect(settings)
    else:
        from crm_graph.graph.falkordb_store import FalkorStore

        store = await FalkorStore.connect(settings)
    if bootstrap:
        try:
            await store.bootstrap()
        except BaseException:
            await store.close()
            raise
    return store


def run_on_store(settings: StoreSettings, work: Callable[[GraphStore], Awaitable[T]]) -> T:
    """Open the store the settings name, run `work(store)` to the end, close the store whatever
    happens: the one way a command (`crm-graph ...`) uses the store."""

    async def run() -> T:
        store = await open_store(settings)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())
