"""The store-side timeout of the statements sent on behalf of an API request.

The API sets it around each request (`statement_timeout(seconds)`); both stores read it for
every statement: FalkorDB gets `TIMEOUT <ms>` with `GRAPH.QUERY` / `GRAPH.RO_QUERY` (the server
aborts the statement), Neo4j a transaction timeout (the server terminates the transaction). A
statement stopped this way raises `StatementTimeout`. Outside a request (loads, training, the
command line) no timeout applies: those statements are meant to run long.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_TIMEOUT: ContextVar[float | None] = ContextVar("crm_graph_statement_timeout", default=None)


def current_timeout() -> float | None:
    """Seconds a statement may run here, or None for no limit."""
    return _TIMEOUT.get()


@contextlib.contextmanager
def statement_timeout(seconds: float | None) -> Iterator[None]:
    """Statements sent inside the block (in this task and the tasks it starts) run with a
    store-side timeout of `seconds` (None: none)."""
    token = _TIMEOUT.set(seconds)
    try:
        yield
    finally:
        _TIMEOUT.reset(token)
