"""`schema`: print or write the GraphQL schema the server serves."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crm_graph.api.cli._common import EXIT_OK
from crm_graph.api.settings import Settings


def register(commands: Any) -> None:
    schema = commands.add_parser(
        "schema",
        help="print the GraphQL schema (SDL)",
        description="Print the GraphQL schema the server serves, as SDL (schema.graphql in the "
        "repository is this output; a test keeps them equal).",
    )
    schema.add_argument("--output", "-o", type=Path, help="write to this file instead")
    schema.set_defaults(handler=schema_command, store_use=None)


def schema_command(args: argparse.Namespace, settings: Settings) -> int:
    from crm_graph.api.schema import sdl

    if args.output:
        args.output.write_text(sdl(), encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(sdl(), end="")
    return EXIT_OK
