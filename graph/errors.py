"""The store's exceptions: one root, a few documented kinds, foreign errors wrapped with
their cause."""

from __future__ import annotations


class StoreError(Exception):
    """Root of every error raised by `graph`."""


class ConfigurationError(StoreError):
    """A setting is missing or malformed; the message names the setting."""


class StoreUnavailable(StoreError):
    """The store could not be reached or started (the cause is chained)."""


class QueryError(StoreError):
    """The store refused a query: a syntax error, a constraint violation, a type error."""


class UnsupportedValue(QueryError):
    """A parameter the engine cannot take, so nothing ran: on FalkorDB, text holding the NUL
    character or a lone surrogate, or a number that is not finite. The message says which kind
    of value, never the value."""


class ReadOnlyViolation(QueryError):
    """A query sent as read-only tried to write."""


READ_ONLY_MESSAGE = (
    "the query tries to write (CREATE, MERGE, SET, DELETE, REMOVE or a writing procedure): "
    "only reads are allowed here"
)
"""What a read-only refusal says, in our words on both engines (FalkorDB's own is "graph.RO_QUERY
is to be executed only on read-only queries"); the engine's message stays on the cause."""


class DataDirError(StoreError):
    """The embedded store's data directory is unusable: wrong format, locked, unwritable."""


class StatementTimeout(QueryError):
    """The store stopped a statement that ran longer than its timeout (`graph.timeouts`)."""


class ServerInUse(StoreError):
    """The embedded server was not stopped: other processes hold it open (`pids`)."""

    def __init__(self, message: str, pids: list[int]) -> None:
        super().__init__(message)
        self.pids = pids
