"""`query` the graph with read-only Cypher, and the store's `status`."""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from crm_graph.api.cli._common import EXIT_OK, EXIT_USAGE, CommandError, on_store, table
from crm_graph.api.settings import Settings
from crm_graph.graph import __version__
from crm_graph.graph.errors import QueryError


def register(commands: Any) -> None:
    query = commands.add_parser(
        "query",
        help="run a read-only Cypher query",
        description="Run one read-only Cypher query and print its rows: a table, --csv or "
        "--json. Writes are refused by the store. Instants are stored as epoch milliseconds; "
        "in the table and the CSV a column or map key named `at`, `since` or ending in `At` "
        "(signupAt, createdAt, t.at) holding a whole number is shown as ISO 8601 UTC "
        "(2024-05-01T09:30:00Z) unless --epoch-ms; --json keeps the stored numbers.",
    )
    query.add_argument("cypher")
    query.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a query parameter; VALUE is read as JSON when it parses, else text",
    )
    output = query.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print a JSON array of row objects")
    output.add_argument(
        "--csv",
        action="store_true",
        help="print CSV (RFC 4180, a header row; lists and maps as JSON; text starting with "
        "= + - @ prefixed with ' so that spreadsheets do not run it)",
    )
    query.add_argument(
        "--epoch-ms", action="store_true", help="show instants as stored, in epoch milliseconds"
    )
    query.set_defaults(handler=query_command, store_use="opens")

    status = commands.add_parser("status", help="the store, its counts, versions")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=status_command, store_use="opens")


def query_command(args: argparse.Namespace, settings: Settings) -> int:
    params: dict[str, Any] = {}
    for item in args.param:
        name, sep, raw = item.partition("=")
        if not sep or not name.isidentifier():
            raise CommandError(f"--param {item!r} must look like NAME=VALUE", EXIT_USAGE)
        try:
            params[name] = json.loads(raw)
        except ValueError:
            params[name] = raw

    missing = sorted(set(parameters_of(args.cypher)) - set(params))
    if missing:
        raise CommandError(
            "the query uses "
            + ", ".join(f"${name}" for name in missing)
            + " but no value was given: add "
            + " ".join(f"--param {name}=VALUE" for name in missing),
            EXIT_USAGE,
        )
    try:
        rows = on_store(settings, lambda store: store.read(args.cypher, params))
    except QueryError as e:
        raise CommandError(f"the store refused the query: {e}") from e
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EXIT_OK
    columns = list(rows[0]) if rows else []
    shown = [[row[c] if args.epoch_ms else readable(c, row[c]) for c in columns] for row in rows]
    if args.csv:
        from crm_graph.loaders.load import neutralise

        if not rows:  # no row: no columns to name either (the store gives none), no output
            return EXIT_OK
        writer = csv.writer(sys.stdout, lineterminator="\r\n")
        writer.writerow(columns)
        writer.writerows([csv_cell(value, neutralise) for value in row] for row in shown)
        return EXIT_OK
    print(table(columns, shown))
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return EXIT_OK


_CAMEL_AT = re.compile(r"[a-z][A-Za-z0-9]*[a-z0-9]At")


def is_instant_name(name: str) -> bool:
    """Whether a column or property holds an instant by our naming rule: `at`, `since`, or a
    camelCase name ending in `At` (`signupAt`, `createdAt`); for `t.at` the part after the dot."""
    last = name.rsplit(".", 1)[-1]
    return last in ("at", "since") or _CAMEL_AT.fullmatch(last) is not None


def iso_instant(epoch_ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC: 2024-05-01T09:30:00Z (.250Z when not whole)."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{epoch_ms % 1000:03d}Z" if epoch_ms % 1000 else "Z")


def readable(name: str, value: Any) -> Any:
    """`value` with the instants in it (by `is_instant_name`) as ISO 8601 text."""
    if isinstance(value, dict):
        return {k: readable(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [readable(name, v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and is_instant_name(name):
        try:
            return iso_instant(value)
        except (OverflowError, OSError, ValueError):  # not an instant after all
            return value
    return value


def csv_cell(value: Any, neutralise: Callable[[str], str]) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, (int, float)):
        return repr(value)
    return neutralise(json.dumps(value, ensure_ascii=False))


_LITERALS_AND_COMMENTS = re.compile(
    r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|//[^\n]*|/\*.*?\*/", re.DOTALL
)
_PARAMETER = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|`([^`]+)`)")


def parameters_of(cypher: str) -> list[str]:
    """The `$names` a Cypher statement uses, outside string literals and comments."""
    code = _LITERALS_AND_COMMENTS.sub(" ", cypher)
    return [plain or quoted for plain, quoted in _PARAMETER.findall(code)]


def status_command(args: argparse.Namespace, settings: Settings) -> int:
    from crm_graph.graph import loader_writes
    from crm_graph.graph.store import GraphStore

    async def gather(store: GraphStore) -> dict[str, Any]:
        nodes = await store.read(loader_writes.COUNT_NODES)
        rels = await store.read(loader_writes.COUNT_RELATIONSHIPS)
        return {
            "store": store.description,
            "engine": await store.server_version(),
            "crm_graph": __version__,
            "python": sys.version.split()[0],
            "data_dir": str(settings.store.data_dir.resolve())
            if settings.store.kind == "embedded"
            else None,
            "nodes": {row["label"]: row["count"] for row in nodes},
            "relationships": {row["type"]: row["count"] for row in rels},
        }

    info = on_store(settings, gather)
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    for key in ("store", "engine", "crm_graph", "python", "data_dir"):
        if info[key]:
            print(f"{key:<10} {info[key]}")
    print(table(["label", "nodes"], sorted(info["nodes"].items())))
    print(table(["relationship", "count"], sorted(info["relationships"].items())))
    return EXIT_OK
