"""The `crm-graph` command line, one module per command group:

- `data`: generate, load
- `query`: query, status
- `serve`: serve, server stop
- `keys`: keys create | list | revoke
- `analytics`: train, score
- `schema`: schema

Each module has a `register(commands)` that adds its sub-parsers and sets, on each, `handler`
(a function of the parsed arguments and the app's `Settings`, read once in `main`, returning an
exit code from `_common`) and `store_use` (None: no store; "opens": an existing store only;
"creates": may create the embedded store's data directory). Handlers open the store through
`_common.on_store`. A new command group is a new module plus one line in `GROUPS`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from crm_graph.api.auth.ratelimit import RateLimitSettingsError
from crm_graph.api.cli import analytics, data, keys, query, schema, serve, webhooks
from crm_graph.api.cli._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PORT,
    EXIT_REFUSED,
    EXIT_REJECTS,
    EXIT_USAGE,
    CommandError,
)
from crm_graph.api.cli.keys import ROLES
from crm_graph.api.cli.serve import DEMO_CUSTOMERS, DEMO_KEY_NAME, DEMO_SEED
from crm_graph.api.settings import Settings
from crm_graph.graph import __version__
from crm_graph.graph.errors import ConfigurationError, DataDirError, StoreError
from crm_graph.loaders.errors import LoaderError

__all__ = [
    "DEMO_CUSTOMERS",
    "DEMO_KEY_NAME",
    "DEMO_SEED",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PORT",
    "EXIT_REFUSED",
    "EXIT_REJECTS",
    "EXIT_USAGE",
    "ROLES",
    "CommandError",
    "build_parser",
    "main",
]

GROUPS = (data, query, serve, keys, webhooks, analytics, schema)
"""The command groups, in the order `--help` lists them."""


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
    parser.add_argument(
        "--create",
        action="store_true",
        help="let the command create the embedded store's data directory if it does not exist "
        "(load and serve --demo always may; others refuse, naming the directory)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = Settings.from_env(store=args.store, data_dir=args.data_dir)
        if args.store_use:
            check_store_exists(args, settings)
            if args.command != "serve":  # serve names it in its "serving" line
                print(f"crm-graph {args.command}: store: {settings.store.description}",
                      file=sys.stderr, flush=True)  # fmt: skip
        code: int = args.handler(args, settings)
        return code
    except CommandError as e:
        print(f"crm-graph {args.command}: {e}", file=sys.stderr)
        return e.code
    except (ConfigurationError, LoaderError, DataDirError, RateLimitSettingsError) as e:
        print(f"crm-graph {args.command}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as e:
        print(f"crm-graph {args.command}: {e}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as e:  # a file we were asked to write or read: its name and why
        where = f" {e.filename}" if e.filename else ""
        print(f"crm-graph {args.command}: cannot use{where}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"crm-graph {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def check_store_exists(args: argparse.Namespace, settings: Settings) -> None:
    """Refuse to create a new, empty embedded store where the user most likely meant an existing
    one (a command run from another folder than usual finds no ./data): only `load`, `serve
    --demo` and `--create` make a data directory."""
    store = settings.store
    creates = args.store_use == "creates" or getattr(args, "demo", False) or args.create
    if store.kind != "embedded" or creates or store.data_dir.exists():
        return
    raise CommandError(
        f"no store at {store.data_dir.resolve()}: that data directory does not exist. Point at "
        "your store with --data-dir or CRM_GRAPH_DATA_DIR (`crm-graph serve` prints the one it "
        "serves), or create an empty store there with `crm-graph --create "
        f"{args.command} ...` or `crm-graph load FOLDER`",
        EXIT_REFUSED,
    )
