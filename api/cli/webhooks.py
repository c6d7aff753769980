"""`webhooks add | list | remove | deliveries | replay | run`: signed HTTP deliveries of the
change events (`crm_graph.api.webhooks`)."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from crm_graph.api import access_commands
from crm_graph.api.cli._common import (
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    instant,
    on_store,
    positive_int,
    table,
)
from crm_graph.api.settings import Settings
from crm_graph.graph.events import EVENT_TYPES


def register(commands: Any) -> None:
    group = commands.add_parser(
        "webhooks",
        help="push change events to partner URLs, signed",
        description="Webhooks POST each change event (customer created, updated, merged, "
        "erased; transaction, interaction, tie recorded; scores written) to a URL, signed with "
        "HMAC-SHA256, at least once and in order per webhook. `crm-graph serve` delivers them "
        "(unless CRM_GRAPH_WEBHOOKS=off; then `crm-graph webhooks run` beside it).",
    )
    actions = group.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="subscribe a URL to event types",
        description="Subscribe URL to the events named. It gets the events written from now on "
        "(--from: from that event number on). The secret is printed once when generated.",
    )
    add.add_argument("url", metavar="URL", help="http:// or https:// URL the events are POSTed to")
    add.add_argument(
        "--events",
        required=True,
        help=f"event types, comma-separated: {', '.join(EVENT_TYPES)}",
    )
    add.add_argument("--secret", help="the signing secret (16+ characters; default: generated)")
    add.add_argument(
        "--customers",
        action="append",
        metavar="LIMIT",
        help="only events about these customers, as for API keys: source:SYSTEM, "
        "segment:NAME, ids:ID,ID or file:PATH; repeated, they add up",
    )
    add.add_argument("--from", dest="from_sequence", type=positive_int, metavar="SEQ",
                     help="start from this event number (default: the next one)")  # fmt: skip
    add.set_defaults(handler=add_command, store_use="opens")
    listing = actions.add_parser("list", help="list webhooks (never their secrets)")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(handler=list_command, store_use="opens")
    remove = actions.add_parser("remove", help="delete a webhook and its delivery records")
    remove.add_argument("webhook_id", metavar="ID")
    remove.set_defaults(handler=remove_command, store_use="opens")
    deliveries = actions.add_parser(
        "deliveries", help="a webhook's latest deliveries: attempts, answers, errors"
    )
    deliveries.add_argument("webhook_id", metavar="ID")
    deliveries.add_argument("--limit", type=positive_int, default=50)
    deliveries.add_argument("--json", action="store_true", help="print a JSON array")
    deliveries.set_defaults(handler=deliveries_command, store_use="opens")
    replay = actions.add_parser(
        "replay",
        help="deliver again from an event number on (restarts a failed webhook)",
    )
    replay.add_argument("webhook_id", metavar="ID")
    replay.add_argument("--from", dest="from_sequence", type=positive_int, required=True,
                        metavar="SEQ")  # fmt: skip
    replay.set_defaults(handler=replay_command, store_use="opens")
    run = actions.add_parser(
        "run",
        help="deliver until interrupted (beside a serve with CRM_GRAPH_WEBHOOKS=off)",
    )
    run.set_defaults(handler=run_command, store_use="opens")


def _ms(value: int | None) -> str | None:
    return None if value is None else instant(datetime.fromtimestamp(value / 1000, UTC))


def _webhook_json(hook: Any) -> dict[str, Any]:
    return {
        "id": hook.id,
        "url": hook.url,
        "events": list(hook.events),
        "customers": hook.scope.describe(),
        "status": hook.status,
        "acknowledged": hook.acknowledged,
        "created_at": _ms(hook.created_at),
        "failed_at": _ms(hook.failed_at),
        "last_error": hook.last_error,
    }


def add_command(args: argparse.Namespace, settings: Settings) -> int:
    from crm_graph.api.webhooks import subscriptions

    try:
        scope = access_commands.customer_scope(args.customers)
        added = on_store(
            settings,
            lambda store: subscriptions.add(
                store,
                args.url,
                args.events.split(","),
                secret=args.secret,
                scope=scope,
                from_sequence=args.from_sequence,
            ),
        )
    except ValueError as e:
        raise CommandError(str(e), EXIT_USAGE) from e
    hook = added.webhook
    print(f"id        {hook.id}")
    print(f"url       {hook.url}")
    print(f"events    {','.join(hook.events)}")
    print(f"customers {hook.scope.describe()}")
    print(f"from      event {hook.acknowledged + 1}")
    if added.secret_generated:
        print("the signing secret, shown only now (verify X-Crm-Graph-Signature with it):")
        print(hook.secret)
    return EXIT_OK


def list_command(args: argparse.Namespace, settings: Settings) -> int:
    from crm_graph.graph import webhooks

    listed = on_store(settings, webhooks.all_webhooks)
    objects = [_webhook_json(h) for h in listed]
    if args.json:
        print(json.dumps(objects, ensure_ascii=False, indent=2))
        return EXIT_OK
    columns = ["id", "url", "events", "customers", "status", "acknowledged", "created"]
    rows = [
        [o["id"], o["url"], ",".join(o["events"]), o["customers"], o["status"],
         o["acknowledged"], o["created_at"]]
        for o in objects
    ]  # fmt: skip
    print(table(columns, rows))
    print(f"({len(listed)} webhook{'s' if len(listed) != 1 else ''})")
    return EXIT_OK


def remove_command(args: argparse.Namespace, settings: Settings) -> int:
    from crm_graph.graph import webhooks

    if not on_store(settings, lambda store: webhooks.remove(store, args.webhook_id)):
        raise CommandError(
            f"no webhook has the id {args.webhook_id!r} (see `crm-graph webhooks list`)"
        )
    print(f"removed webhook {args.webhook_id}: nothing more is delivered to it")
    return EXIT_OK


def deliveries_command(args: argparse.Namespace, settings: Settings) -> int:
    from crm_graph.graph import webhooks

    async def work(store: Any) -> list[Any]:
        if await webhooks.webhook(store, args.webhook_id) is None:
            raise CommandError(
                f"no webhook has the id {args.webhook_id!r} (see `crm-graph webhooks list`)"
            )
        return await webhooks.deliveries(store, args.webhook_id, args.limit)

    found = on_store(settings, work)
    objects = [
        {"id": d.id, "sequence": d.sequence, "type": d.type, "status": d.status,
         "attempts": d.attempts, "last_status": d.last_status, "last_error": d.last_error,
         "last_attempt_at": _ms(d.last_attempt_at), "delivered_at": _ms(d.delivered_at)}
        for d in found
    ]  # fmt: skip
    if args.json:
        print(json.dumps(objects, ensure_ascii=False, indent=2))
        return EXIT_OK
    columns = ["delivery", "event", "type", "status", "attempts", "answer", "error", "last try"]
    rows = [
        [o["id"], o["sequence"], o["type"], o["status"], o["attempts"], o["last_status"] or "",
         o["last_error"] or "", o["last_attempt_at"]]
        for o in objects
    ]  # fmt: skip
    print(table(columns, rows))
    return EXIT_OK


def replay_command(args: argparse.Namespace, settings: Settings) -> int:
    from crm_graph.api.webhooks import subscriptions

    try:
        hook = on_store(
            settings,
            lambda store: subscriptions.replay(store, args.webhook_id, args.from_sequence),
        )
    except LookupError as e:
        raise CommandError(str(e)) from e
    except ValueError as e:
        raise CommandError(str(e), EXIT_USAGE) from e
    print(f"webhook {hook.id} delivers again from event {args.from_sequence} on ({hook.status})")
    return EXIT_OK


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    from crm_graph.api.webhooks.worker import DeliveryConfig, WebhookWorker

    async def work(store: Any) -> None:
        worker = WebhookWorker(store, DeliveryConfig.from_settings(settings))
        print(f"delivering webhooks from {settings.store.description} (Ctrl-C stops)", flush=True)
        try:
            await worker.run()
        except asyncio.CancelledError:
            await worker.stop()
            raise

    try:
        on_store(settings, work)
    except KeyboardInterrupt:
        print("stopped")
    return EXIT_OK
