"""The Starlette application: GraphQL at /graphql behind API keys, health checks, the store
opened and closed in the lifespan.

`CRM_GRAPH_ENV=production` turns GraphiQL off and masks unexpected errors (they are logged with
the request id); requests larger than `CRM_GRAPH_MAX_BODY` bytes (default 64 KiB) are refused
with 413 before anything is parsed.

Middleware, outermost first: the access log (request id, one line per request), CORS for the
origins of `CRM_GRAPH_CORS_ORIGINS` (a preflight carries no key, so it is answered before
authentication), the body limit, authentication and rate limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)

from crm_graph.api.access_log import AccessLog, AccessLogFormat, operation_name
from crm_graph.api.audit_trail import AuditWriter, prune_every_hour
from crm_graph.api.auth.cache import KeyCache
from crm_graph.api.auth.failures import FailedAuthLimiter
from crm_graph.api.auth.keys import authenticate
from crm_graph.api.auth.middleware import AuthMiddleware
from crm_graph.api.auth.principal import AuthError, Principal
from crm_graph.api.auth.ratelimit import PointsLimiter, RateLimiter
from crm_graph.api.context import Context
from crm_graph.api.cors import cors_middleware
from crm_graph.api.events.hub import EventHub
from crm_graph.api.graphiql import (
    ASSETS_DIR,
    ASSETS_PATH,
    CONTENT_SECURITY_POLICY,
    assets_missing,
    graphiql_page,
)
from crm_graph.api.schema import build_schema
from crm_graph.api.settings import Settings
from crm_graph.graph import __version__
from crm_graph.graph.errors import ConfigurationError, StoreError
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore, open_store
from crm_graph.graph.timeouts import statement_timeout

log = logging.getLogger(__name__)
EXPLORE_PAGE = Path(__file__).parent / "static" / "explore"
"""The analyst's workbench (built from web/explore by `make web`), served at /explore: static
files only, the page asks for the key and sends it to /graphql."""


class WebSocketRefused(Exception):
    """A websocket's `connection_init` is refused: closed with `code` and `reason` (safe to show:
    never the key). Not Strawberry's `ConnectionRejectionError`, which it closes with 4403
    "Forbidden" whatever the cause."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__()
        self.code = code
        self.reason = reason


CLOSE_FORBIDDEN = 4403
"""graphql-transport-ws's close code for a `connection_init` refused: no key, a malformed,
unknown, expired or revoked one."""
CLOSE_TOO_MANY_FAILURES = 4429
CLOSE_STORE_UNAVAILABLE = 1013
"""RFC 6455's "try again later": the key could not be looked up."""


class _TransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry's graphql-transport-ws handler, closing a refused `connection_init` with the
    code and reason `CrmGraphQL.on_ws_connect` gives (Strawberry's own says only "Forbidden")."""

    async def handle_connection_init(self, message: Any) -> None:
        try:
            await super().handle_connection_init(message)
        except WebSocketRefused as e:
            await self.websocket.close(code=e.code, reason=e.reason)


class CrmGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI app with our context: the store, the caller, fresh loaders; and over a
    websocket (graphql-transport-ws), subscriptions fed by `events`, the key given in
    `connection_init`."""

    graphql_transport_ws_handler_class = _TransportWS
    events: EventHub | None = None
    failed_auth_limiter: FailedAuthLimiter | None = None
    key_cache: KeyCache | None = None
    points_limiter: PointsLimiter | None = None

    async def get_context(self, request: Any, response: Any) -> Context:
        state = request.state
        websocket = request.scope.get("type") == "websocket"
        return Context(
            store=request.app.state.store,
            principal=getattr(state, "principal", None),
            request_id=getattr(state, "request_id", ""),
            scope_state={"client": request.scope.get("client")} if websocket else
            request.scope.get("state"),
            audit_writer=getattr(request.app.state, "audit_writer", None),
            events=self.events if websocket else None,
            credential=request.headers.get("authorization") if websocket else None,
        )  # fmt: skip

    async def on_ws_connect(self, context: Context) -> None:
        """A websocket's key: the `Authorization` header of its handshake (checked by the auth
        middleware), else its `connection_init` payload, `{"authorization": "Bearer <key>"}` or
        `{"apiKey": "<key>"}` (a browser cannot set headers on a websocket). Refused
        (`WebSocketRefused`) without one, or with a malformed, unknown, expired or revoked one;
        failed attempts count towards the client address's limit as over HTTP."""
        state = context.scope_state if context.scope_state is not None else {}
        principal = context.principal
        if principal is None:
            principal = await self._authenticate(context, state)
            context.authenticated(principal)
            context.credential = _credential(context.connection_params or {})
        if self.points_limiter is not None:
            state["points"] = (self.points_limiter, principal.key_id)

    async def _authenticate(self, context: Context, state: dict[str, Any]) -> Principal:
        try:
            header = _credential(context.connection_params or {})
        except ValueError as e:
            raise WebSocketRefused(CLOSE_FORBIDDEN, str(e)) from None
        client = state.get("client")
        address = str(client[0]) if client else "-"
        failures = self.failed_auth_limiter
        if failures is not None and not failures.vouched(header):
            blocked = failures.check(address)
            if not blocked.allowed:
                raise WebSocketRefused(
                    CLOSE_TOO_MANY_FAILURES,
                    "too many failed authentications from this address; retry in "
                    f"{blocked.retry_after_header}s",
                )
        try:
            if self.key_cache is not None:
                principal = await self.key_cache.authenticate(context.store, header)
            else:
                principal = await authenticate(context.store, header)
        except AuthError as e:
            if failures is not None:
                failures.failed(address)
            message = e.message
            if header is None:
                message = (
                    "no API key: send it in connection_init's payload, "
                    '{"authorization": "Bearer <key>"} or {"apiKey": "<key>"}'
                )
            raise WebSocketRefused(CLOSE_FORBIDDEN, message[:120]) from None
        except StoreError as e:
            log.warning("cannot authenticate websocket %s: %s", context.request_id, e)
            raise WebSocketRefused(CLOSE_STORE_UNAVAILABLE, "the store is unavailable") from None
        if failures is not None and header:
            failures.vouch(header)
        return principal

    async def render_graphql_ide(self, request: Any) -> Response:
        """Our GraphiQL page (`api.graphiql`): its assets served by this app, no CDN."""
        return HTMLResponse(
            graphiql_page(request.url.path),
            headers={"content-security-policy": CONTENT_SECURITY_POLICY},
        )

    async def execute_operation(
        self,
        request: Any,
        request_adapter: Any,
        request_data: Any,
        context: Context,
        root_value: Any,
        sub_response: Any,
    ) -> Any:
        """Run the request, its operation's name noted for the access log (`state["access"]`)."""
        access = _access(request)
        if access is not None and not isinstance(request_data, list):
            access["operation"] = operation_name(request_data.operation_name, request_data.query)
        return await super().execute_operation(
            request=request,
            request_adapter=request_adapter,
            request_data=request_data,
            context=context,
            root_value=root_value,
            sub_response=sub_response,
        )

    async def process_result(self, request: Any, result: Any) -> Any:
        """The answer, with what the request cost in `extensions.cost` (`CostReport`), noted for
        the access log too."""
        processed = await super().process_result(request, result)
        report = (request.scope.get("state") or {}).get("cost")
        if report is not None and isinstance(processed, dict):
            extensions = processed.get("extensions") or {}
            processed["extensions"] = {**extensions, "cost": report.as_extension()}
        access = _access(request)
        answered = processed.get("extensions") if isinstance(processed, dict) else None
        if access is not None and isinstance(answered, dict) and "cost" in answered:
            cost = answered["cost"]  # the access log gives the points the request asked for
            access["cost"] = cost.get("requested") if isinstance(cost, dict) else cost
        return processed

    def decode_json(self, data: str | bytes) -> object:
        """A body that is not a JSON object (or list, a batch), nests deeper than Python
        parses, or is not text in any encoding JSON allows (bytes that look like UTF-16 or
        UTF-32 but do not decode) is no GraphQL request: 400, like malformed JSON, instead of a
        crash."""
        try:
            decoded = super().decode_json(data)
        except RecursionError as e:
            raise json.JSONDecodeError("nested too deeply", "", 0) from e
        except UnicodeDecodeError as e:
            raise json.JSONDecodeError("not text", "", 0) from e
        if not isinstance(decoded, dict | list):
            raise json.JSONDecodeError("not an object", "", 0)
        return decoded

    def encode_json(self, data: object) -> str:
        """Answers encoded by orjson: the bench's 360 answer (2.3 kB) in 4 us against the
        standard library's 36 us. Text, not bytes, so that websocket messages stay text frames.
        What orjson refuses (an integer beyond 64 bits in a JSON property) goes to the standard
        library."""
        try:
            return orjson.dumps(data).decode()
        except TypeError:
            return super().encode_json(data)  # type: ignore[return-value]


CONNECTION_INIT_WAIT = timedelta(seconds=10)
"""How long a websocket may take to send `connection_init` before it is closed (4408)."""


def _credential(params: dict[str, Any]) -> str | None:
    """The key a `connection_init` payload gives, as an Authorization header's value."""
    header = params.get("authorization", params.get("Authorization"))
    if header is None and params.get("apiKey") is not None:
        header = params["apiKey"]
        if not isinstance(header, str):
            raise ValueError("apiKey must be a string")
        header = f"Bearer {header}"
    if header is not None and not isinstance(header, str):
        raise ValueError("authorization must be a string")
    return header


def _engine(store: GraphStore) -> str:
    """Which engine, for /readyz: never the data directory's path or a host (the store's
    `description` says those, for logs)."""
    return "neo4j" if store.description.startswith("Neo4j") else "falkordb"


class _Timed:
    """`app` with every statement it sends run under a store-side timeout (`graph.timeouts`).
    A class, not a function: Starlette's Route calls a function as a request handler."""

    def __init__(self, app: ASGIApp, seconds: float | None) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with statement_timeout(self.seconds):
            await self.app(scope, receive, send)


def freeze_startup_heap() -> None:
    """Move every object alive once the app has started (the schema, its caches, the modules,
    the store's client: about 100k objects) out of the garbage collector's sight (`gc.freeze`).
    A full collection walks every tracked object: with them, one took 66 ms of CPU in the middle
    of a request (about 500 ms of blocked event loop on this shared 2-core machine), after it
    7 ms. They live as long as the server, so the collector has nothing to find among them."""
    gc.collect()
    gc.freeze()


def _access(request: Any) -> dict[str, Any] | None:
    """The access log's notes on this request (None when the app runs without `AccessLog`)."""
    scope = getattr(request, "scope", None)
    notes = scope.get("state", {}).get("access") if isinstance(scope, dict) else None
    return notes if isinstance(notes, dict) else None


class BodyLimit:
    """Refuse a request body over `limit` bytes with 413, before the app reads it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(scope, receive, send, self.limit)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(scope, receive, send, self.limit)


class _BodyTooLarge(Exception):
    pass


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = JSONResponse(
        {"errors": [{"message": f"request body over {limit} bytes",
                     "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]},
        status_code=413,
    )  # fmt: skip
    await response(scope, receive, send)


def create_app(
    settings: Settings | StoreSettings,
    *,
    store: GraphStore | None = None,
    production: bool | None = None,
    rate_limiter: RateLimiter | bool | None = True,
    points_limiter: PointsLimiter | bool | None = True,
    failed_auth_limiter: FailedAuthLimiter | bool | None = True,
    introspection: bool | None = None,
    close_store: bool = False,
    cors: tuple[str, ...] | None = None,
    access_log: AccessLogFormat | None = None,
    key_cache: KeyCache | bool | None = True,
    webhook_worker: bool = False,
) -> Starlette:
    """The ASGI app. `settings`: the app's (`Settings`), or only the store's, the rest then read
    from the environment once, here. A given `store` is used as is (and closed at shutdown only
    with `close_store`, as `crm-graph serve` asks, having opened it before listening); otherwise
    the app opens the store the settings name at startup and closes it at shutdown.
    `production` None follows `CRM_GRAPH_ENV`; `introspection` None follows
    `CRM_GRAPH_INTROSPECTION` (or production). The limiters (`rate_limiter`, `points_limiter`,
    `failed_auth_limiter`) True take their limits from the settings; None or False turns them
    off. `cors` (the origins allowed to call from a browser) and `access_log` (`text`, `json`,
    `off`) default to the settings' (`CRM_GRAPH_CORS_ORIGINS`, `CRM_GRAPH_ACCESS_LOG`);
    `key_cache` True too (`CRM_GRAPH_KEY_CACHE_SECONDS`, see api/auth/cache.py: a revoke takes
    effect within its ttl, 1 s by default), None or False turns it off. `webhook_worker`: run
    the webhook delivery worker (`crm_graph.api.webhooks.worker`) as a task of the app's
    lifespan, with the settings' delivery options (`crm-graph serve` asks for it unless
    CRM_GRAPH_WEBHOOKS is off)."""
    app_settings = settings if isinstance(settings, Settings) else Settings.from_env(store=settings)
    settings = app_settings.store
    if production is None:
        production = app_settings.production
    limiter = (
        RateLimiter.from_settings(app_settings) if rate_limiter is True else (rate_limiter or None)
    )
    points = (
        PointsLimiter.from_settings(app_settings)
        if points_limiter is True
        else (points_limiter or None)
    )
    failures = (
        FailedAuthLimiter.from_settings(app_settings)
        if failed_auth_limiter is True
        else (failed_auth_limiter or None)
    )
    keys = key_cache if isinstance(key_cache, KeyCache) else None  # not `or`: it has a length
    if key_cache is True:
        keys = KeyCache(app_settings.key_cache_seconds)
    timeout = app_settings.statement_timeout
    max_body = app_settings.max_body
    origins = app_settings.cors_origins if cors is None else cors
    log_format = app_settings.access_log if access_log is None else access_log
    graphiql = not production
    if graphiql and assets_missing():
        raise ConfigurationError(
            f"GraphiQL's built files {', '.join(assets_missing())} are missing from "
            f"{ASSETS_DIR} (run `make web`), or set CRM_GRAPH_ENV=production to serve without it"
        )

    audit_every = app_settings.audit_flush_seconds

    @contextlib.asynccontextmanager
    async def auditing(app: Starlette, serving: GraphStore) -> AsyncIterator[None]:
        """The audit writer, when entries are buffered: its last entries written before the
        store closes."""
        if not audit_every:
            yield
            return
        writer = AuditWriter(serving, audit_every)
        writer.start()
        app.state.audit_writer = writer
        try:
            yield
        finally:
            app.state.audit_writer = None
            await writer.close()

    @contextlib.asynccontextmanager
    async def delivering(opened: GraphStore) -> AsyncIterator[None]:
        """The webhook worker as a task beside the app, stopped before the store closes."""
        if not webhook_worker:
            yield
            return
        from crm_graph.api.webhooks.worker import DeliveryConfig, WebhookWorker

        worker = WebhookWorker(opened, DeliveryConfig.from_settings(app_settings))
        task = asyncio.create_task(worker.run(), name="webhook worker")
        try:
            yield
        finally:
            await worker.stop()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 5.0)

    hub = EventHub(
        interval=app_settings.event_poll_seconds, per_key=app_settings.subscriptions_per_key
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if store is not None:
            app.state.store = store
            freeze_startup_heap()
            try:
                async with auditing(app, store), delivering(store):
                    yield
            finally:
                await hub.close()
                if close_store:
                    await store.close()
            return
        opened = await open_store(settings)
        app.state.store = opened
        log.info("serving %s", opened.description)
        freeze_startup_heap()
        pruning = asyncio.create_task(prune_every_hour(opened, app_settings.audit_days))
        try:
            async with auditing(app, opened), delivering(opened):
                yield
        finally:
            pruning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruning
            await hub.close()
            await opened.close()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    async def readyz(request: Request) -> JSONResponse:
        current: GraphStore = request.app.state.store
        try:
            await current.ping()
        except StoreError as e:
            log.warning("not ready: %s", e)
            return JSONResponse({"status": "unavailable", "store": _engine(current)}, 503)
        return JSONResponse({"status": "ready", "store": _engine(current)})

    async def schema_sdl(request: Request) -> Response:
        return Response(graphql_app.schema.as_str() + "\n", media_type="text/plain")

    graphql_app = CrmGraphQL(
        build_schema(production=production, introspection=introspection, settings=app_settings),
        graphql_ide="graphiql" if graphiql else None,
        allow_queries_via_get=False,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=CONNECTION_INIT_WAIT,
        max_subscriptions_per_connection=app_settings.subscriptions_per_key,
        allowed_origins=origins,
    )
    graphql_app.events = hub
    graphql_app.failed_auth_limiter = failures
    graphql_app.key_cache = keys
    graphql_app.points_limiter = points
    routes: list[Route | WebSocketRoute | Mount] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/schema.graphql", schema_sdl),
        Route("/graphql", _Timed(graphql_app, timeout or None), methods=["GET", "POST"]),
        WebSocketRoute("/graphql", _Timed(graphql_app, timeout or None)),
    ]
    if graphiql:
        routes.append(Mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="graphiql"))
    routes.append(Mount("/explore", StaticFiles(directory=EXPLORE_PAGE, html=True), name="explore"))
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(AccessLog, format=log_format),
            *cors_middleware(origins),
            Middleware(BodyLimit, limit=max_body),
            Middleware(
                AuthMiddleware,
                rate_limiter=limiter,
                points_limiter=points,
                failed_auth_limiter=failures,
                key_cache=keys,
            ),
        ],
        lifespan=lifespan,
    )
    app.state.events = hub
    if store is not None:
        app.state.store = store
    return app
