"""`keys rotate | customers`, `customers export` and `audit`: partner access on the command line.

The arguments, and what each command prints, are `crm_graph.api.access_commands`'; this module
gives each parser its handler and maps the refusals to exit codes, like every command group."""

from __future__ import annotations

import argparse
from typing import Any

from crm_graph.api import access_commands
from crm_graph.api.cli._common import EXIT_OK, EXIT_USAGE, CommandError
from crm_graph.api.settings import Settings


def register(commands: Any, key_commands: Any) -> None:
    """The parsers `access_commands` adds under `keys` and at the top, with their handlers."""
    handlers = {
        ("keys", "rotate"): rotate,
        ("keys", "customers"): set_customers,
        ("customers", None): export,
        ("audit", None): audit,
    }
    access_commands.register(commands, key_commands)
    for (group, action), handler in handlers.items():
        parser = (key_commands if group == "keys" else commands).choices[action or group]
        if group == "customers":
            parser = parser._subparsers._group_actions[0].choices["export"]
        parser.set_defaults(handler=handler, store_use="opens")


def _refusals(work: Any) -> Any:
    try:
        return work()
    except LookupError as e:
        raise CommandError(str(e)) from e
    except ValueError as e:
        raise CommandError(str(e), EXIT_USAGE) from e


def rotate(args: argparse.Namespace, settings: Settings) -> int:
    print("\n".join(_refusals(lambda: access_commands.rotate_key(args, settings.store))))
    return EXIT_OK


def set_customers(args: argparse.Namespace, settings: Settings) -> int:
    print(_refusals(lambda: access_commands.set_customers(args, settings.store)))
    return EXIT_OK


def export(args: argparse.Namespace, settings: Settings) -> int:
    text = access_commands.export_customer(args, settings.store)
    if text is None:
        raise CommandError(f"no customer has the id {args.customer_id!r}")
    if args.output is None:
        print(text)
    else:
        print(f"wrote the export of {args.customer_id} to {args.output}")
    return EXIT_OK


def audit(args: argparse.Namespace, settings: Settings) -> int:
    print(
        "\n".join(
            _refusals(
                lambda: access_commands.audit_lines(args, settings.store, settings.audit_days)
            )
        )
    )
    return EXIT_OK
