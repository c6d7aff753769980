"""The command line of partner access: key scopes, customer scopes, expiry and rotation
(`keys create/rotate/customers/list`), customer exports (`customers export ID`) and the audit
trail (`audit`). Argument parsing lives here; `api/cli.py` only registers and dispatches, so that
these commands move with no change when the command line is split by command group."""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crm_graph.api.auth import keys
from crm_graph.api.auth.scopes import PRESETS, SCOPES, Scope, parse_scopes
from crm_graph.graph import audit, export
from crm_graph.graph.access import EVERYONE, CustomerScope
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import run_on_store

_DURATION = re.compile(r"(?P<n>\d+)(?P<unit>[smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class UsageError(ValueError):
    """A bad argument: the message names it."""


def duration(text: str) -> timedelta:
    """`90s`, `15m`, `24h`, `30d`."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"{text!r} is not a duration such as 30d, 24h, 15m or 90s")
    return timedelta(**{_UNITS[match["unit"]]: int(match["n"])})


def instant(text: str, *, now: datetime | None = None) -> datetime:
    """An ISO 8601 date or time (UTC unless it says otherwise), or a duration from now."""
    if _DURATION.fullmatch(text.strip()):
        # a whole second, rounded up: what `keys list` shows is then the instant itself
        at = (now or datetime.now(UTC)) + duration(text)
        return at if at.microsecond == 0 else at.replace(microsecond=0) + timedelta(seconds=1)
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{text!r} is neither an ISO 8601 date or time nor a duration such as 30d"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def customer_scope(given: list[str] | None) -> CustomerScope:
    """`--customers source:SYSTEM`, `segment:NAME_OR_ID`, `ids:ID,ID,...` or `file:PATH` (one
    id a line); repeated, they add up (a customer in any of them is in scope)."""
    systems: list[str] = []
    segments: list[str] = []
    ids: list[str] = []
    for item in given or ():
        kind, _, value = item.partition(":")
        values = [v.strip() for v in value.split(",") if v.strip()]
        if kind == "file":
            try:
                lines = Path(value).read_text(encoding="utf-8").splitlines()
            except OSError as e:
                raise UsageError(f"--customers {item!r}: cannot read {value}: {e}") from e
            ids += [line.strip() for line in lines if line.strip()]
        elif not values:
            raise UsageError(f"--customers {item!r} names nothing after {kind}:")
        elif kind == "source":
            systems += values
        elif kind == "segment":
            segments += values
        elif kind == "ids":
            ids += values
        else:
            raise UsageError(
                f"--customers {item!r}: expected source:SYSTEM, segment:NAME, ids:ID,... "
                "or file:PATH"
            )
    if not (systems or segments or ids):
        return EVERYONE
    return CustomerScope(
        tuple(dict.fromkeys(systems)), tuple(dict.fromkeys(segments)), tuple(dict.fromkeys(ids))
    )


def add_key_rights(parser: argparse.ArgumentParser) -> None:
    """`keys create`'s options for scopes, customers and expiry."""
    scope_names = ", ".join(s.value for s in Scope)
    parser.add_argument(
        "--scope",
        action="append",
        metavar="SCOPE",
        help=f"what the key may read and write, repeated or comma-separated: {scope_names}, "
        f"or a role's preset ({', '.join(PRESETS)}); default: the role's preset",
    )
    parser.add_argument(
        "--customers",
        action="append",
        metavar="LIMIT",
        help="limit the key to some customers: source:SYSTEM (those with a source record of "
        "that system), segment:NAME, ids:ID,ID or file:PATH; repeated, they add up",
    )
    parser.add_argument(
        "--expires",
        metavar="WHEN",
        help="when the key stops working: an ISO 8601 date or time (UTC), or a duration "
        "from now (90d, 12h)",
    )


def create_rights(args: argparse.Namespace) -> dict[str, Any]:
    """`create_key`'s keyword arguments from `keys create`'s options."""
    try:
        scopes = parse_scopes(args.scope) if args.scope else None
    except ValueError as e:
        raise UsageError(f"--scope: {e}") from e
    expires = instant(args.expires) if args.expires else None
    return {"scopes": scopes, "customers": customer_scope(args.customers), "expires_at": expires}


def register(commands: Any, key_commands: Any) -> None:
    """The parsers of `keys rotate`, `keys customers`, `customers export` and `audit`."""
    rotate = key_commands.add_parser(
        "rotate",
        help="replace a key by a new one with the same rights",
        description="Create a key with the name, role, scopes, customers and expiry of KEY_ID, "
        "print it (once), and let KEY_ID keep working for --overlap, then expire.",
    )
    rotate.add_argument("key_id", metavar="KEY_ID")
    rotate.add_argument(
        "--overlap", default="24h", help="how long the old key keeps working (default 24h; 0s)"
    )
    customers = key_commands.add_parser(
        "customers",
        help="replace a key's explicit list of customers",
        description="Replace the explicit list of customer ids a key may see (its source "
        "systems and segments stay). No ids: the list is emptied.",
    )
    customers.add_argument("key_id", metavar="KEY_ID")
    customers.add_argument("ids", nargs="*", metavar="CUSTOMER_ID")

    group = commands.add_parser("customers", help="one customer's data: export")
    actions = group.add_subparsers(dest="customers_command", required=True, metavar="ACTION")
    exporting = actions.add_parser(
        "export",
        help="everything held about one customer, as JSON (GDPR Articles 15 and 20)",
        description="Print (or write with -o) one JSON document with everything the store holds "
        "about a customer: profile and every other property, scores with their model version, "
        "source records, orders and lines, contacts, ties, segments, audit entries.",
    )
    exporting.add_argument("customer_id", metavar="ID")
    exporting.add_argument("-o", "--output", type=Path, help="write to this file")

    trail = commands.add_parser(
        "audit",
        help="who read or wrote which customers",
        description="Audit entries, newest first: key id, operation, customer ids, time, "
        "request id (never personal values). --prune deletes entries older than --days.",
    )
    trail.add_argument("--customer", metavar="ID", help="entries naming this customer")
    trail.add_argument("--key", metavar="KEY_ID", help="entries of this key")
    trail.add_argument("--since", metavar="WHEN", help="ISO 8601 date or time (UTC)")
    trail.add_argument("--until", metavar="WHEN", help="ISO 8601 date or time (UTC)")
    trail.add_argument("--first", type=int, default=100, help="at most this many (1-1000)")
    trail.add_argument("--json", action="store_true", help="print a JSON array")
    trail.add_argument("--prune", action="store_true", help="delete entries older than --days")
    trail.add_argument(
        "--days", type=float, default=None, help="retention for --prune (CRM_GRAPH_AUDIT_DAYS)"
    )


def _when(value: datetime | None) -> str:
    """UTC to the second, or to the millisecond (what the store keeps) when there is one."""
    if value is None:
        return ""
    if value.microsecond // 1000:
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def rotate_key(args: argparse.Namespace, settings: StoreSettings) -> list[str]:
    """The lines `keys rotate` prints, the new key last; `LookupError` when nothing to rotate."""
    overlap = duration(args.overlap)
    found = run_on_store(
        settings, lambda store: keys.rotate_key(store, args.key_id, overlap=overlap)
    )
    if found is None:
        raise LookupError(f"no active API key has the id {args.key_id!r} (see `keys list`)")
    info, key = found
    ends = datetime.now(UTC) + overlap
    return [
        f"id       {info.id}",
        f"replaces {args.key_id} (it keeps working until {_when(ends)})",
        f"scopes   {' '.join(sorted(s.value for s in info.scopes))}",
        f"customers {info.customers.describe()}",
        f"expires  {_when(info.expires_at) or 'never'}",
        "the key, shown only now (send it as Authorization: Bearer KEY):",
        key,
    ]


def set_customers(args: argparse.Namespace, settings: StoreSettings) -> str:
    try:
        done = run_on_store(
            settings, lambda store: keys.set_customer_ids(store, args.key_id, args.ids)
        )
    except ValueError as e:
        raise UsageError(str(e)) from e
    if not done:
        raise LookupError(f"no API key has the id {args.key_id!r} (see `keys list`)")
    return f"API key {args.key_id} now lists {len(set(args.ids))} customer id(s)"


def key_columns(key: keys.ApiKeyInfo) -> dict[str, str]:
    """What `keys list` adds about a key's rights."""
    return {
        "scopes": ",".join(sorted(s.value for s in key.scopes)),
        "customers": key.customers.describe(),
        "expires": _when(key.expires_at),
    }


def export_customer(args: argparse.Namespace, settings: StoreSettings) -> str | None:
    """The export as JSON text (None: no such customer); written to `--output` if given."""
    found = run_on_store(settings, lambda store: export.customer_export(store, args.customer_id))
    if found is None:
        return None
    text = json.dumps(found, ensure_ascii=False, indent=2, sort_keys=True)
    if args.output is not None:
        args.output.write_text(text + "\n", encoding="utf-8")
    return text


def audit_lines(
    args: argparse.Namespace, settings: StoreSettings, retention_days: float
) -> list[str]:
    """`audit`'s output: the entries, or what --prune deleted (older than `--days`, else than
    `retention_days`: `Settings.audit_days`)."""
    if args.prune:
        from crm_graph.api.audit_trail import prune_expired

        days = retention_days if args.days is None else args.days
        if days < 0:
            raise UsageError("--days cannot be negative")
        deleted = run_on_store(settings, lambda store: prune_expired(store, days))
        return [f"deleted {deleted} audit entries older than {days:g} days"]
    if not 1 <= args.first <= audit.MAX_ENTRIES:
        raise UsageError(f"--first must be between 1 and {audit.MAX_ENTRIES}")
    since = int(instant(args.since).timestamp() * 1000) if args.since else None
    until = int(instant(args.until).timestamp() * 1000) if args.until else None
    found = run_on_store(
        settings,
        lambda store: audit.entries(
            store, key_id=args.key, customer_id=args.customer, since=since, until=until,
            first=args.first,
        ),
    )  # fmt: skip
    rows = [
        {
            "at": datetime.fromtimestamp(e.at / 1000, UTC).isoformat(timespec="milliseconds"),
            "key_id": e.key_id,
            "operation": e.operation,
            "customer_ids": e.customers,
            "request_id": e.request_id,
        }
        for e in found
    ]
    if args.json:
        return [json.dumps(rows, ensure_ascii=False, indent=2)]
    return [
        f"{r['at']}  {r['key_id']}  {r['request_id']}  {r['operation']}  "
        f"{','.join(r['customer_ids'])}"
        for r in rows
    ] + [f"({len(rows)} entr{'y' if len(rows) == 1 else 'ies'})"]


SCOPE_TABLE = SCOPES
"""Re-exported for `keys create --help` readers and the README."""
