"""Small helpers for writing contract folders in tests, and for cleaning up after real
processes."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import signal
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from crm_graph.api.auth.keys import ID_LENGTH, KEY_PREFIX
from crm_graph.graph.embedded import EmbeddedServer, _pid_alive
from crm_graph.loaders.reading import COLUMNS

T = TypeVar("T")


def secret_of(key: str) -> str:
    """The secret part of an API key `crm_<id>_<secret>`. The secret is url-safe base64, which
    may itself hold `_` (about one key in seven) or end with one, and the id never does: split
    after the id, never on the last `_`."""
    prefix, key_id, secret = key.split("_", 2)
    assert f"{prefix}_" == KEY_PREFIX and len(key_id) == ID_LENGTH, "not a crm-graph key"
    return secret


def write_csv(
    path: Path, rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None
) -> Path:
    rows = list(rows)
    kind = path.stem
    header = list(columns or COLUMNS.get(kind, ()) or rows[0].keys())  # type: ignore[call-overload]
    for row in rows:
        header += [k for k in row if k not in header]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, header)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def read_rejects(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file (a rejects or merges file) as dicts."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def stop_embedded_server(data_dir: Path) -> None:
    """Stop the embedded server of `data_dir` if one is left there (a test that failed half way,
    a killed process): cleanly if it answers, else SIGKILL. Nothing when none runs."""
    record = EmbeddedServer(data_dir).read_record()
    EmbeddedServer(data_dir).stop()
    if record is not None and _pid_alive(record.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGKILL)


AUDIT = 1
"""The statement writing a request's audit entry (api/audit_trail.py), in round-trip counts of
requests that read or write customers."""


def broad_partner_scopes() -> frozenset[Any]:
    """A partner key given every read scope but contact details and aggregates: what the
    partner role could read before scopes, to test masking on every path."""
    from crm_graph.api.auth.scopes import PRESETS, Scope

    return PRESETS["partner"] | {Scope.LIST, Scope.TIES, Scope.CONTACTS, Scope.SCORES}


async def loop_turns_during(run: Awaitable[T]) -> tuple[T, int]:
    """What `run` gave, and how many turns another task had on the event loop while it ran."""
    turns = 0
    done = False

    async def count() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count())
    await asyncio.sleep(0)  # the counter has started
    before = turns
    result = await run
    during = turns - before
    done = True
    await counter
    return result, during
