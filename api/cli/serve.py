"""`serve` the API over HTTP (optionally on a demo business) and `server stop` the embedded
store's server."""

from __future__ import annotations

import argparse
from typing import Any

from crm_graph.api.cli._common import EXIT_OK, EXIT_USAGE, CommandError, on_store, port_number
from crm_graph.api.settings import Settings
from crm_graph.graph import __version__

DEMO_CUSTOMERS, DEMO_SEED = 2000, 7
DEMO_KEY_NAME = "demo"


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="serve the API over HTTP")
    serve.add_argument(
        "--host", help="the interface to listen on (default CRM_GRAPH_HOST or 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=port_number, help="the TCP port (default CRM_GRAPH_PORT or 8000)"
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help=f"load a generated demo business ({DEMO_CUSTOMERS} customers) "
        f"first if the store holds no customers, and print a new admin API key "
        f"(named {DEMO_KEY_NAME!r})",
    )
    serve.set_defaults(handler=serve_command)

    server = commands.add_parser("server", help="manage the embedded store's server")
    server_commands = server.add_subparsers(dest="server_command", required=True)
    stop = server_commands.add_parser("stop", help="stop the embedded server of the data directory")
    stop.set_defaults(handler=server_stop)


def serve_command(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from crm_graph.api.app import create_app

    if args.demo:
        prepare_demo(settings)
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    print(
        f"crm-graph {__version__} serving {settings.store.description} on "
        f"http://{host}:{port} (GraphQL: /graphql, health: /healthz, /readyz)",
        flush=True,
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
    return EXIT_OK


def prepare_demo(settings: Settings) -> None:
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
        folder = settings.store.data_dir / "demo-input"
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

    key = on_store(settings, prepare)
    print(key, flush=True)


def server_stop(args: argparse.Namespace, settings: Settings) -> int:
    from crm_graph.graph.embedded import EmbeddedServer

    if settings.store.kind != "embedded":
        raise CommandError("`server stop` manages the embedded store only", EXIT_USAGE)
    stopped = EmbeddedServer(settings.store.data_dir).stop()
    print("stopped the embedded server" if stopped else "no embedded server was running")
    return EXIT_OK
