"""The `crm-graph` command line: generate, load, query, serve, status, keys, server stop."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from crm_graph.api.auth.ratelimit import RateLimitSettingsError
from crm_graph.graph import __version__
from crm_graph.graph.errors import ConfigurationError, DataDirError, QueryError, StoreError
from crm_graph.graph.settings import StoreSettings, parse_store
from crm_graph.loaders.errors import LoaderError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REJECTS = 0, 1, 2, 3
DEMO_CUSTOMERS, DEMO_SEED = 2000, 7
DEMO_KEY_NAME = "demo"
ROLES = ("admin", "analyst", "partner")
T = TypeVar("T")


class CommandError(Exception):
    """A command failed in a way the user can fix; the message says how."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crm-graph",
        description="A customer knowledge graph behind a GraphQL API.",
        epilog="The store: --store or CRM_GRAPH_STORE (embedded | falkordb://host:port | "
        "neo4j://user:pass@host:7687); the embedded store keeps its files in --data-dir or "
        "CRM_GRAPH_DATA_DIR (default ./data).",
    )
    parser.add_argument("--version", action="version", version=f"crm-graph {__version__}")
    parser.add_argument("--store", help="embedded (default), falkordb://host:port, neo4j://...")
    parser.add_argument("--data-dir", help="the embedded store's data directory (default ./data)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = commands.add_parser(
        "generate",
        help="write a synthetic business as a contract folder",
        description="Write customers, products, transactions, interactions and social ties that "
        "look like a real business (communities, heavy-tailed spend, seasonality, churn, "
        "friends' influence), deterministic for a seed.",
    )
    gen.add_argument("out", type=Path, help="folder to write (created)")
    gen.add_argument("--customers", type=_positive_int, default=10_000, help="default 10000")
    gen.add_argument("--seed", type=int, default=1, help="default 1")
    gen.add_argument("--start", type=date.fromisoformat, default=date(2023, 1, 1))
    gen.add_argument("--end", type=date.fromisoformat, default=date(2024, 12, 31))
    gen.add_argument(
        "--lines-per-customer",
        type=float,
        default=10.0,
        help="mean transaction lines per customer (default 10)",
    )

    load = commands.add_parser(
        "load",
        help="load a contract folder (CSV or JSON Lines) into the store",
        description="Validate every row and load it, or reject it with file, line, column and "
        "reason into the rejects file. Loading the same folder twice changes nothing.",
    )
    load.add_argument("folder", type=Path)
    load.add_argument(
        "--rejects",
        type=Path,
        help="rejects CSV (default: FOLDER.rejects.csv "
        "beside the folder; merges go to FOLDER.merges.csv)",
    )
    load.add_argument("--batch-size", type=_positive_int, default=5000)
    load.add_argument("--default-region", help="ISO country code for phones without +CC")
    load.add_argument("--no-progress", action="store_true", help="no progress bars")
    load.add_argument(
        "--strict",
        action="store_true",
        help=f"exit with status {EXIT_REJECTS} when any row was rejected",
    )

    query = commands.add_parser(
        "query",
        help="run a read-only Cypher query",
        description="Run one read-only Cypher query and print its rows (a table, or --json). "
        "Writes are refused by the store.",
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
    query.add_argument("--json", action="store_true", help="print a JSON array of row objects")

    serve = commands.add_parser("serve", help="serve the API over HTTP")
    serve.add_argument("--host", default=os.environ.get("CRM_GRAPH_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("CRM_GRAPH_PORT", "8000")))
    serve.add_argument(
        "--demo",
        action="store_true",
        help=f"load a generated demo business ({DEMO_CUSTOMERS} customers) "
        f"first if the store holds no customers, and print a new admin API key "
        f"(named {DEMO_KEY_NAME!r})",
    )

    status = commands.add_parser("status", help="the store, its counts, versions")
    status.add_argument("--json", action="store_true")

    keys = commands.add_parser(
        "keys",
        help="create, list and revoke API keys",
        description="API keys let clients call /graphql (Authorization: Bearer KEY). The store "
        "keeps a digest of each key, never the key itself: it is shown once, at creation.",
    )
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    key_create = key_commands.add_parser(
        "create",
        help="create a key and print it (once)",
        description="Create an API key. Its id, name and role are printed, then the key itself "
        "as the last line: it is shown only now.",
    )
    key_create.add_argument(
        "--role",
        required=True,
        choices=ROLES,
        help="admin: everything; analyst: reads all, writes nothing; "
        "partner: no personal data, no aggregates over all customers",
    )
    key_create.add_argument("--name", help="who or what the key is for (default: the role)")
    key_list = key_commands.add_parser(
        "list",
        help="list keys (never their secrets)",
        description="Every key with its id, name, role, and when it was created, revoked and "
        "last used (to the minute). Secrets and digests are never shown.",
    )
    key_list.add_argument("--json", action="store_true", help="print a JSON array")
    key_revoke = key_commands.add_parser(
        "revoke",
        help="revoke a key at once",
        description="Revoke a key: the next request that uses it is refused.",
    )
    key_revoke.add_argument("key_id", metavar="KEY_ID", help="the id `keys list` shows")

    train = commands.add_parser(
        "train",
        help="train the analytics and write scores back",
        description="Train every model the data supports as of a date (default: the day after "
        "the last order or contact), evaluate each on held-out data, write scores, segments and "
        "model cards back to the graph, and print a summary.",
    )
    train.add_argument(
        "--as-of",
        type=_end_of_utc_date,
        help="YYYY-MM-DD: train on what was known at the end of that day (UTC); default: the "
        "last day with an order or contact",
    )
    train.add_argument("--horizon-days", type=_positive_int, default=90)
    train.add_argument("--report", type=Path, help="write the metrics as JSON to this file")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--processes",
        type=int,
        choices=(1, 2),
        help="2: a worker process makes the rules and recommendations while the other models "
        "train (default: 2 from 20,000 customers on a machine with two cores or more)",
    )
    train.add_argument(
        "--churn-label",
        metavar="PROPERTY",
        help="learn churn from this customer property (true/false) instead of "
        "deriving it from purchases",
    )

    score = commands.add_parser(
        "score",
        help="score customers with the last training's models (no retraining)",
        description="Score the given customers (new or changed since the last `train`) with "
        "the models that training saved, and write their scores back.",
    )
    score.add_argument("customer_ids", nargs="+", metavar="CUSTOMER_ID")

    schema = commands.add_parser(
        "schema",
        help="print the GraphQL schema (SDL)",
        description="Print the GraphQL schema the server serves, as SDL (schema.graphql in the "
        "repository is this output; a test keeps them equal).",
    )
    schema.add_argument("--output", "-o", type=Path, help="write to this file instead")

    server = commands.add_parser("server", help="manage the embedded store's server")
    server_commands = server.add_subparsers(dest="server_command", required=True)
    server_commands.add_parser("stop", help="stop the embedded server of the data directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = parse_store(args.store, data_dir=args.data_dir)
        handler = {
            "generate": _generate,
            "load": _load,
            "query": _query,
            "serve": _serve,
            "status": _status,
            "keys": _keys,
            "schema": _schema,
            "train": _train,
            "score": _score,
            "server": _server,
        }[args.command]
        return handler(args, settings)
    except CommandError as e:
        print(f"crm-graph {args.command}: {e}", file=sys.stderr)
        return e.code
    except (ConfigurationError, LoaderError, DataDirError, RateLimitSettingsError) as e:
        print(f"crm-graph {args.command}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as e:
        print(f"crm-graph {args.command}: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"crm-graph {args.command}: interrupted", file=sys.stderr)
        return 130


# -- commands ------------------------------------------------------------------------------------


def _generate(args: argparse.Namespace, settings: StoreSettings) -> int:
    from crm_graph.loaders.synthetic import generate

    if args.end <= args.start:
        raise CommandError("--end must be after --start", EXIT_USAGE)
    report = generate(
        args.out,
        args.customers,
        args.seed,
        start=args.start,
        end=args.end,
        lines_per_customer=args.lines_per_customer,
    )
    for name, count in report.rows.items():
        print(f"{name:<22} {count:>12,} rows")
    print(f"wrote {args.out} in {report.seconds:.1f}s")
    return EXIT_OK


def _load(args: argparse.Namespace, settings: StoreSettings) -> int:
    from crm_graph.graph.store import open_store
    from crm_graph.loaders.load import load_folder

    async def run() -> Any:
        store = await open_store(settings)
        try:
            return await load_folder(
                store,
                args.folder,
                rejects_path=args.rejects,
                batch_size=args.batch_size,
                default_region=args.default_region,
                progress=False if args.no_progress else None,
            )
        finally:
            await store.close()

    report = asyncio.run(run())
    rows = [
        [f.file, f.read, f.loaded, f.rejected, f.fields_dropped, ", ".join(f.ignored_columns)]
        for f in report.files
    ]
    rows.append(
        [
            "total",
            report.rows_read,
            report.rows_loaded,
            report.rows_rejected,
            sum(f.fields_dropped for f in report.files),
            "",
        ]
    )
    print(_table(["file", "read", "loaded", "rejected", "fields dropped", "ignored columns"], rows))
    print(
        f"identity resolution merged {len(report.merges)} record(s) into existing customers"
        + (f" (see {report.merges_path})" if report.merges else "")
    )
    if report.rows_rejected or any(f.fields_dropped for f in report.files):
        print(f"rejected rows and dropped fields: {report.rejects_path}")
    rate = report.rows_read / report.seconds if report.seconds else 0.0
    print(f"loaded in {report.seconds:.1f}s ({rate:,.0f} rows/s) into {settings.description}")
    return EXIT_REJECTS if args.strict and report.rows_rejected else EXIT_OK


def _query(args: argparse.Namespace, settings: StoreSettings) -> int:
    from crm_graph.graph.store import open_store

    params: dict[str, Any] = {}
    for item in args.param:
        name, sep, raw = item.partition("=")
        if not sep or not name.isidentifier():
            raise CommandError(f"--param {item!r} must look like NAME=VALUE", EXIT_USAGE)
        try:
            params[name] = json.loads(raw)
        except ValueError:
            params[name] = raw

    async def run() -> list[dict[str, Any]]:
        store = await open_store(settings)
        try:
            return await store.read(args.cypher, params)
        finally:
            await store.close()

    try:
        rows = asyncio.run(run())
    except QueryError as e:
        raise CommandError(f"the store refused the query: {e}") from e
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        columns = list(rows[0]) if rows else []
        print(_table(columns, [[row[c] for c in columns] for row in rows]))
        print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return EXIT_OK


def _serve(args: argparse.Namespace, settings: StoreSettings) -> int:
    import uvicorn

    from crm_graph.api.app import create_app

    if args.demo:
        _prepare_demo(settings)
    print(
        f"crm-graph {__version__} serving {settings.description} on "
        f"http://{args.host}:{args.port} (GraphQL: /graphql, health: /healthz, /readyz)",
        flush=True,
    )
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return EXIT_OK


def _train(args: argparse.Namespace, settings: StoreSettings) -> int:
    from crm_graph.graph.store import open_store

    async def run() -> Any:
        from crm_graph.analytics.train import train

        store = await open_store(settings)
        try:
            return await train(
                store,
                as_of=args.as_of,
                horizon_days=args.horizon_days,
                seed=args.seed,
                churn_label=args.churn_label,
                model_dir=_model_dir(settings),
                progress=lambda m: print(m, flush=True),
                processes=args.processes,
            )
        finally:
            await store.close()

    try:
        report = asyncio.run(run())
    except ValueError as e:
        raise CommandError(str(e)) from e
    summary = report.as_json()
    for name, reason in report.skipped.items():
        print(f"skipped {name}: {reason}")
    print(
        f"scored {report.customers_scored:,} customers; model version {report.version}; "
        f"{report.total_seconds:.1f}s"
    )
    if args.report:
        args.report.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
        print(f"report: {args.report}")
    return EXIT_OK


def _model_dir(settings: StoreSettings) -> Path:
    """Where fitted models go: CRM_GRAPH_MODEL_DIR, or `models` in the data directory."""
    return Path(os.environ.get("CRM_GRAPH_MODEL_DIR") or settings.data_dir / "models")


def _score(args: argparse.Namespace, settings: StoreSettings) -> int:
    from crm_graph.analytics.score import NoModels, score_customers
    from crm_graph.graph.store import open_store

    async def run() -> Any:
        store = await open_store(settings)
        try:
            return await score_customers(
                store, args.customer_ids, _model_dir(settings) / "latest.joblib"
            )
        finally:
            await store.close()

    try:
        scored = asyncio.run(run())
    except NoModels as e:
        raise CommandError(str(e)) from e
    missing = [c for c in args.customer_ids if c not in set(scored.index)]
    for customer_id, row in scored.iterrows():
        risk = row.get("mlChurnRisk")
        shown = "n/a" if risk is None or risk != risk else f"{risk:.3f}"
        print(f"{customer_id}: churn risk {shown}, RFM {row.get('mlRfmScore') or 'n/a'}")
    if missing:
        raise CommandError(f"no such customer(s): {', '.join(missing)}")
    return EXIT_OK


def _utc_date(text: str) -> Any:
    import pandas as pd

    try:
        return pd.Timestamp(date.fromisoformat(text), tz="UTC")
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-06-30") from e


def _end_of_utc_date(text: str) -> Any:
    """The instant a day ends (UTC): `train --as-of 1997-09-30` knows the orders of 30 September
    and is measured from 1 October on, as the default as_of is the end of the last day."""
    import pandas as pd

    return _utc_date(text) + pd.Timedelta(days=1)


def _schema(args: argparse.Namespace, settings: StoreSettings) -> int:
    from crm_graph.api.schema import sdl

    if args.output:
        args.output.write_text(sdl(), encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(sdl(), end="")
    return EXIT_OK


def _prepare_demo(settings: StoreSettings) -> None:
    """Load the demo business unless the store holds customers; print a new admin key."""
    from crm_graph.api.auth.keys import create_key
    from crm_graph.graph import cypher
    from crm_graph.graph.store import GraphStore
    from crm_graph.loaders.load import load_folder
    from crm_graph.loaders.synthetic import generate

    async def load_demo_business(store: GraphStore) -> None:
        found = (await store.read(cypher.COUNT_CUSTOMERS))[0]["count"]
        if found:
            print(f"demo: the store already holds {found:,} customers", flush=True)
            return
        folder = settings.data_dir / "demo-input"
        print(f"demo: generating {DEMO_CUSTOMERS} customers into {folder}", flush=True)
        generate(folder, DEMO_CUSTOMERS, DEMO_SEED)
        report = await load_folder(store, folder, progress=False)
        print(f"demo: loaded {report.rows_loaded:,} rows in {report.seconds:.1f}s", flush=True)

    async def prepare(store: GraphStore) -> str:
        await load_demo_business(store)
        info, key = await create_key(store, "admin", DEMO_KEY_NAME)
        print(
            f"demo: a new admin API key (id {info.id}; revoke it with "
            f"`crm-graph keys revoke {info.id}`), send it as Authorization: Bearer KEY:",
            flush=True,
        )
        return key

    key = _on_store(settings, prepare)
    print(key, flush=True)


def _status(args: argparse.Namespace, settings: StoreSettings) -> int:
    from crm_graph.graph import cypher
    from crm_graph.graph.store import open_store

    async def run() -> dict[str, Any]:
        store = await open_store(settings)
        try:
            nodes = await store.read(cypher.COUNT_NODES)
            rels = await store.read(cypher.COUNT_RELATIONSHIPS)
            return {
                "store": store.description,
                "engine": await store.server_version(),
                "crm_graph": __version__,
                "python": sys.version.split()[0],
                "data_dir": str(settings.data_dir.resolve())
                if settings.kind == "embedded"
                else None,
                "nodes": {row["label"]: row["count"] for row in nodes},
                "relationships": {row["type"]: row["count"] for row in rels},
            }
        finally:
            await store.close()

    info = asyncio.run(run())
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    for key in ("store", "engine", "crm_graph", "python", "data_dir"):
        if info[key]:
            print(f"{key:<10} {info[key]}")
    print(_table(["label", "nodes"], sorted(info["nodes"].items())))
    print(_table(["relationship", "count"], sorted(info["relationships"].items())))
    return EXIT_OK


def _keys(args: argparse.Namespace, settings: StoreSettings) -> int:
    from crm_graph.api.auth import keys

    if args.keys_command == "create":
        try:
            info, key = _on_store(
                settings, lambda store: keys.create_key(store, args.role, args.name or args.role)
            )
        except ValueError as e:
            raise CommandError(str(e), EXIT_USAGE) from e
        print(f"id       {info.id}")
        print(f"name     {info.name}")
        print(f"role     {info.role}")
        print(f"created  {_instant(info.created_at)}")
        print("the key, shown only now (send it as Authorization: Bearer KEY):")
        print(key)
        return EXIT_OK

    if args.keys_command == "revoke":
        if not _on_store(settings, lambda store: keys.revoke_key(store, args.key_id)):
            raise CommandError(f"no API key has the id {args.key_id!r} (see `crm-graph keys list`)")
        print(f"revoked API key {args.key_id}: requests using it are refused from now on")
        return EXIT_OK

    listed = _on_store(settings, keys.list_keys)
    if args.json:
        objects = [
            {
                "id": k.id,
                "name": k.name,
                "role": k.role.value,
                "created_at": _instant(k.created_at),
                "revoked_at": _instant(k.revoked_at),
                "last_used_at": _instant(k.last_used_at),
            }
            for k in listed
        ]
        print(json.dumps(objects, ensure_ascii=False, indent=2))
        return EXIT_OK
    columns = ["id", "name", "role", "created", "revoked", "last used"]
    rows = [
        [k.id, k.name, k.role.value]
        + [_instant(t) or "" for t in (k.created_at, k.revoked_at, k.last_used_at)]
        for k in listed
    ]
    print(_table(columns, rows))
    active = sum(not k.revoked for k in listed)
    print(f"({len(listed)} key{'s' if len(listed) != 1 else ''}, {active} active)")
    return EXIT_OK


def _server(args: argparse.Namespace, settings: StoreSettings) -> int:
    from crm_graph.graph.embedded import EmbeddedServer

    if settings.kind != "embedded":
        raise CommandError("`server stop` manages the embedded store only", EXIT_USAGE)
    stopped = EmbeddedServer(settings.data_dir).stop()
    print("stopped the embedded server" if stopped else "no embedded server was running")
    return EXIT_OK


# -- helpers -------------------------------------------------------------------------------------


def _on_store(settings: StoreSettings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Open the store, run `work(store)`, close the store."""
    from crm_graph.graph.store import open_store

    async def run() -> T:
        store = await open_store(settings)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _instant(moment: datetime | None) -> str | None:
    """A UTC time to the second, ISO 8601: 2024-05-01T09:30:00Z."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _cell(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:,}"
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
