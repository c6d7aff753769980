"""`serve` the API over HTTP (optionally on a demo business) and `server stop` the embedded
store's server."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import socket
from typing import TYPE_CHECKING, Any

from crm_graph.api.cli._common import (
    EXIT_OK,
    EXIT_PORT,
    EXIT_REFUSED,
    EXIT_USAGE,
    CommandError,
    port_number,
)
from crm_graph.api.settings import Settings
from crm_graph.graph import __version__

DEMO_CUSTOMERS, DEMO_SEED = 2000, 7
DEMO_KEY_NAME = "demo"
DEMO_KEY_FILE = "demo-key"

if TYPE_CHECKING:
    from crm_graph.graph.store import GraphStore


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
        f"first if the store holds no customers, and print an admin API key (named "
        f"{DEMO_KEY_NAME!r}, kept in DATA_DIR/{DEMO_KEY_FILE}, mode 0600, and printed again by "
        "the next run while it works)",
    )
    serve.set_defaults(handler=serve_command, store_use="opens")

    server = commands.add_parser("server", help="manage the embedded store's server")
    server_commands = server.add_subparsers(dest="server_command", required=True)
    stop = server_commands.add_parser(
        "stop",
        help="stop the embedded server of the data directory",
        description="Stop the embedded store's server. Refused while another crm-graph process "
        "(a serve, a load) uses it, unless --force.",
    )
    stop.add_argument(
        "--force",
        action="store_true",
        help="stop it even while in use (a running serve then answers 503 until restarted)",
    )
    stop.set_defaults(handler=server_stop, store_use="opens")


def serve_command(args: argparse.Namespace, settings: Settings) -> int:
    """Listen first (a taken port fails before anything else happens), then open the store,
    prepare the demo on it if asked, print "serving" and serve until interrupted."""
    import uvicorn

    from crm_graph.api.access_log import configure_handler
    from crm_graph.api.app import create_app
    from crm_graph.graph.store import open_store

    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    listening = listen(host, port)

    served = False

    async def run() -> None:
        nonlocal served
        # The store is opened here, before "serving" is printed, so that a store that cannot
        # be opened is a one-line error; the app's lifespan closes it at shutdown (before
        # uvicorn re-raises a SIGTERM it caught, which ends the process).
        store = await open_store(settings.store)
        try:
            if args.demo:
                await prepare_demo(store, settings)
            app = create_app(
                settings, store=store, close_store=True, webhook_worker=settings.webhooks
            )
        except BaseException:
            await store.close()
            raise
        configure_handler(settings.access_log)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        serving = asyncio.create_task(server.serve(sockets=[listening]))
        # "serving" once it is: uvicorn then handles SIGINT and SIGTERM (shutting down cleanly,
        # closing the store), which it does not before
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if server.started:
            served = True
            print(
                f"crm-graph {__version__} serving {settings.store.description} on "
                f"http://{_url_host(host)}:{listening.getsockname()[1]} (GraphQL: /graphql, "
                "health: /healthz, /readyz)",
                flush=True,
            )
        await serving

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        # Ctrl-C once serving is the way to stop a server: uvicorn shut it down cleanly (the
        # store let go of), then raised the SIGINT again. Before that, an interruption.
        if not served:
            raise
    finally:
        listening.close()
    return EXIT_OK


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (as uvicorn binds: SO_REUSEADDR, IPv6 where the host is),
    or a `CommandError` with exit code `EXIT_PORT` saying why not."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except (socket.gaierror, UnicodeError) as e:
        raise CommandError(
            f"cannot listen on {host!r}: not a known host name or address ({e}); "
            "choose another with --host or CRM_GRAPH_HOST",
            EXIT_PORT,
        ) from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        why = (
            "it is in use by another program (another `crm-graph serve`?)"
            if e.errno == errno.EADDRINUSE
            else e.strerror or str(e)
        )
        raise CommandError(
            f"cannot listen on {host}:{port}: {why}; choose another port with --port or "
            "CRM_GRAPH_PORT (make run PORT=8001)",
            EXIT_PORT,
        ) from None
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def prepare_demo(store: GraphStore, settings: Settings) -> None:
    """Load the demo business unless the store holds customers, and print an admin key: the
    one kept in the data directory's `demo-key` file (mode 0600) by an earlier run while it
    still works, else a new one, kept there for the next run."""
    from crm_graph.graph import loader_writes
    from crm_graph.loaders.load import load_folder
    from crm_graph.loaders.synthetic import generate

    found = (await store.read(loader_writes.COUNT_CUSTOMERS))[0]["count"]
    if found:
        print(f"demo: the store already holds {found:,} customers", flush=True)
    else:
        folder = settings.store.data_dir / "demo-input"
        print(f"demo: generating {DEMO_CUSTOMERS} customers into {folder}", flush=True)
        generate(folder, DEMO_CUSTOMERS, DEMO_SEED)
        report = await load_folder(store, folder, progress=False)
        print(f"demo: loaded {report.rows_loaded:,} rows in {report.seconds:.1f}s", flush=True)
    key = await demo_key(store, settings)
    print(key, flush=True)


async def demo_key(store: GraphStore, settings: Settings) -> str:
    from crm_graph.api.auth.keys import authenticate, create_key
    from crm_graph.api.auth.principal import AuthError
    from crm_graph.api.auth.scopes import Role

    kept = settings.store.data_dir / DEMO_KEY_FILE if settings.store.kind == "embedded" else None
    if kept is not None and kept.is_file():
        key = kept.read_text(encoding="utf-8").strip()
        try:
            principal = await authenticate(store, f"Bearer {key}")
        except AuthError:
            principal = None
        if principal is not None and principal.role == Role.ADMIN:
            print(
                f"demo: the admin API key kept in {kept} (mode 0600) since an earlier run "
                f"(id {principal.key_id}; revoke it with `crm-graph keys revoke "
                f"{principal.key_id}`), send it as Authorization: Bearer KEY:",
                flush=True,
            )
            return key
    info, key = await create_key(store, "admin", DEMO_KEY_NAME)
    where = ""
    if kept is not None:
        fd = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(key + "\n")
        os.chmod(kept, 0o600)
        where = f", kept in {kept} (mode 0600) for the next run"
    print(
        f"demo: a new admin API key (id {info.id}; revoke it with "
        f"`crm-graph keys revoke {info.id}`{where}), send it as Authorization: Bearer KEY:",
        flush=True,
    )
    return key


def server_stop(args: argparse.Namespace, settings: Settings) -> int:
    from crm_graph.graph.embedded import EmbeddedServer
    from crm_graph.graph.errors import ServerInUse

    if settings.store.kind != "embedded":
        raise CommandError("`server stop` manages the embedded store only", EXIT_USAGE)
    try:
        stopped = EmbeddedServer(settings.store.data_dir).stop(force=args.force)
    except ServerInUse as e:
        raise CommandError(
            f"{e}: stop that first (Ctrl-C in its terminal), or add --force "
            "(a running serve then answers 503 until it is restarted)",
            EXIT_REFUSED,
        ) from e
    print("stopped the embedded server" if stopped else "no embedded server was running")
    return EXIT_OK
