"""`keys create | list | revoke`: the API keys clients send to /graphql."""

from __future__ import annotations

import argparse
import json
from typing import Any

from crm_graph.api import access_commands
from crm_graph.api.auth.scopes import Role
from crm_graph.api.cli import access
from crm_graph.api.cli._common import EXIT_OK, EXIT_USAGE, CommandError, instant, on_store, table
from crm_graph.api.settings import Settings

ROLES = tuple(role.value for role in Role)


def register(commands: Any) -> None:
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
        help="the preset of scopes: admin: everything; analyst: reads all, writes nothing; "
        "partner: profile and orders of customers whose id it knows, email and phone masked "
        "(see --scope)",
    )
    key_create.add_argument("--name", help="who or what the key is for (default: the role)")
    access_commands.add_key_rights(key_create)
    key_create.set_defaults(handler=create, store_use="opens")
    key_list = key_commands.add_parser(
        "list",
        help="list keys (never their secrets)",
        description="Every key with its id, name, role, and when it was created, revoked and "
        "last used (to the minute). Secrets and digests are never shown.",
    )
    key_list.add_argument("--json", action="store_true", help="print a JSON array")
    key_list.set_defaults(handler=list_command, store_use="opens")
    key_revoke = key_commands.add_parser(
        "revoke",
        help="revoke a key at once",
        description="Revoke a key: the next request that uses it is refused.",
    )
    key_revoke.add_argument("key_id", metavar="KEY_ID", help="the id `keys list` shows")
    key_revoke.set_defaults(handler=revoke, store_use="opens")
    access.register(commands, key_commands)


def create(args: argparse.Namespace, settings: Settings) -> int:
    from crm_graph.api.auth import keys

    try:
        rights = access_commands.create_rights(args)
        info, key = on_store(
            settings,
            lambda store: keys.create_key(store, args.role, args.name or args.role, **rights),
        )
    except ValueError as e:
        raise CommandError(str(e), EXIT_USAGE) from e
    print(f"id       {info.id}")
    print(f"name     {info.name}")
    print(f"role     {info.role}")
    print(f"created  {instant(info.created_at)}")
    for column, value in access_commands.key_columns(info).items():
        print(f"{column:<8} {value or 'never'}")
    print("the key, shown only now (send it as Authorization: Bearer KEY):")
    print(key)
    return EXIT_OK


def revoke(args: argparse.Namespace, settings: Settings) -> int:
    from crm_graph.api.auth import keys

    if not on_store(settings, lambda store: keys.revoke_key(store, args.key_id)):
        raise CommandError(f"no API key has the id {args.key_id!r} (see `crm-graph keys list`)")
    print(f"revoked API key {args.key_id}: requests using it are refused from now on")
    return EXIT_OK


def list_command(args: argparse.Namespace, settings: Settings) -> int:
    from crm_graph.api.auth import keys

    listed = on_store(settings, keys.list_keys)
    if args.json:
        objects = [
            {
                "id": k.id,
                "name": k.name,
                "role": k.role.value,
                "created_at": instant(k.created_at),
                "revoked_at": instant(k.revoked_at),
                "last_used_at": instant(k.last_used_at),
                **access_commands.key_columns(k),
            }
            for k in listed
        ]
        print(json.dumps(objects, ensure_ascii=False, indent=2))
        return EXIT_OK
    columns = ["id", "name", "role", "created", "revoked", "last used", "scopes", "customers",
               "expires"]  # fmt: skip
    rows = [
        [k.id, k.name, k.role.value]
        + [instant(t) or "" for t in (k.created_at, k.revoked_at, k.last_used_at)]
        + list(access_commands.key_columns(k).values())
        for k in listed
    ]
    print(table(columns, rows))
    active = sum(not k.revoked for k in listed)
    print(f"({len(listed)} key{'s' if len(listed) != 1 else ''}, {active} active)")
    return EXIT_OK
