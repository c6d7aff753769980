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


class DataDirError(StoreError):
    """The embedded store's data directory is unusable: wrong format, locked, unwritable."""


class StatementTimeout(QueryError):
    """The store stopped a statement that ran longer than its timeout (`graph.timeouts`)."""
