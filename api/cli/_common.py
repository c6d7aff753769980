"""What every command shares: exit codes, the error a user can fix, one way to open the store,
and the table and instant formats."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from crm_graph.api.settings import Settings, whole

EXIT_OK = 0
EXIT_FAILED = 1
"""The store failed, or refused the query or the change."""
EXIT_USAGE = 2
"""Bad arguments, a malformed setting, an unusable input file or folder."""
EXIT_REJECTS = 3
"""`load --strict`: some rows were rejected (the others were loaded)."""
EXIT_REFUSED = 4
"""Refused so as not to surprise: no store at the data directory (`--create` makes one),
`server stop` while the server is in use (`--force`), `generate` into a folder that is not empty
(`--force`)."""
EXIT_PORT = 5
"""`serve` cannot listen on its host and port (taken, not allowed, unknown host)."""
EXIT_INTERRUPTED = 130
T = TypeVar("T")

Handler = Callable[[argparse.Namespace, Settings], int]
"""A command: its parsed arguments and the settings in, an exit code out."""


class CommandError(Exception):
    """A command failed in a way the user can fix; the message says how."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def on_store(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Open the store the settings name, run `work(store)`, close the store (whatever
    happens): `graph.store.run_on_store`."""
    from crm_graph.graph.store import run_on_store

    return run_on_store(settings.store, work)


def instant(moment: datetime | None) -> str | None:
    """A UTC time to the second, ISO 8601: 2024-05-01T09:30:00Z."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def port_number(text: str) -> int:
    try:
        return int(whole(0, 65535)(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"must be {e}, got {text!r}") from None


def cell(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:,}"
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)
