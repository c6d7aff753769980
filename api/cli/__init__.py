"""The `crm-graph` command line, one module per command group:

- `data`: generate, load
- `query`: query, status
- `serve`: serve, server stop
- `keys`: keys create | list | revoke
- `analytics`: train, score
- `schema`: schema

Each module has a `register(commands)` that adds its sub-parsers and sets `handler` on each
(a function of the parsed arguments and the app's `Settings`, read once here, returning an exit
code); handlers
open the store through `_common.on_store`. A new command group is a new module plus one line
in `GROUPS`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from crm_graph.api.auth.ratelimit import RateLimitSettingsError
from crm_graph.api.cli import analytics, data, keys, query, schema, serve
from crm_graph.api.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
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
    "EXIT_OK",
    "EXIT_REJECTS",
    "EXIT_USAGE",
    "ROLES",
    "CommandError",
    "build_parser",
    "main",
]

GROUPS = (data, query, serve, keys, analytics, schema)
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
    except KeyboardInterrupt:
        print(f"crm-graph {args.command}: interrupted", file=sys.stderr)
        return 130
