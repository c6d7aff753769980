"""The ASGI middleware that lets a request reach the GraphQL endpoint only with a valid key.

Under `protected_prefix` (default `/graphql`), an HTTP request needs `Authorization: Bearer
<key>`: the principal goes into `request.state.principal` and the app runs; otherwise the
answer is 401 (or 429 over the key's rate, 503 when the store cannot say) and nothing runs.
The one exception is the GraphiQL page: a GET asking for `text/html` with no query string
(Strawberry renders the IDE and executes nothing). A WebSocket under the prefix needs the
header too, or is closed before it is accepted, unless it offers the graphql-transport-ws
subprotocol without the header: its key then comes in its `connection_init` message, which the
GraphQL app checks before running anything (`api.app.CrmGraphQL.on_ws_connect`). Paths outside
the prefix are open, with `request.state.principal` None.

The request id and the log line of every request are the access log's (`api.access_log`, the
middleware around this one); the principal this middleware sets is what names the key there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_graph.api.access_log import request_id_of
from crm_graph.api.auth.cache import KeyCache
from crm_graph.api.auth.failures import FailedAuthLimiter
from crm_graph.api.auth.keys import authenticate
from crm_graph.api.auth.principal import AuthError, Principal
from crm_graph.api.auth.ratelimit import PointsLimiter, PointsStatus, RateLimiter
from crm_graph.graph.errors import StoreError
from crm_graph.graph.store import GraphStore

log = logging.getLogger(__name__)

_WEBSOCKET_POLICY_VIOLATION = 1008


class AuthMiddleware:
    """Authenticate requests under `protected_prefix` and rate-limit them per key. The store is
    the app's: `scope["app"].state.store`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        protected_prefix: str = "/graphql",
        rate_limiter: RateLimiter | None = None,
        points_limiter: PointsLimiter | None = None,
        failed_auth_limiter: FailedAuthLimiter | None = None,
        key_cache: KeyCache | None = None,
    ) -> None:
        if not protected_prefix.startswith("/") or protected_prefix.endswith("/"):
            raise ValueError(
                f"protected_prefix must start with / and not end with one, got {protected_prefix!r}"
            )
        self.app = app
        self.protected_prefix = protected_prefix
        self.rate_limiter = rate_limiter
        self.points_limiter = points_limiter
        self.failed_auth_limiter = failed_auth_limiter
        self.key_cache = key_cache

    async def _authenticate(self, scope: Scope, header: str | None) -> Principal:
        """The key look-up, through the key cache when there is one (see api/auth/cache.py)."""
        if self.key_cache is not None:
            return await self.key_cache.authenticate(_store(scope), header)
        return await authenticate(_store(scope), header)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket" and self._protected(scope["path"]):
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.setdefault("state", {})
        state["principal"] = None
        headers = _headers(scope)
        status = 500
        principal: Principal | None = None

        async def send_tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra: list[tuple[bytes, bytes]] = []
                if principal is not None and self.points_limiter is not None:
                    points: PointsStatus | None = state.get("rate_status")
                    if points is None:
                        points = self.points_limiter.look(principal.key_id)
                    extra += points.headers()
                    if not points.allowed and status == 200:
                        status = 429
                        extra.append((b"retry-after", points.retry_after_header.encode()))
                message = {
                    **message,
                    "status": status,
                    "headers": [*message.get("headers", ()), *extra],
                }
            await send(message)

        if self._protected(scope["path"]) and not _is_graphiql_page(scope, headers):
            refusal: tuple[int, str, str, dict[str, str]] | None = None
            address = _client_address(scope)
            failures = self.failed_auth_limiter
            credential = headers.get("authorization")
            blocked = failures.check(address) if failures is not None else None
            vouched = failures is not None and failures.vouched(credential)
            if blocked is not None and not blocked.allowed and not vouched:
                await _refuse(send_tagged, 429, "RATE_LIMITED",
                              "too many failed authentications from this address; retry in "
                              f"{blocked.retry_after_header}s",
                              {"retry-after": blocked.retry_after_header})  # fmt: skip
                return
            try:
                principal = await self._authenticate(scope, credential)
                if failures is not None and credential:
                    failures.vouch(credential)
            except AuthError as e:
                if failures is not None:
                    failures.failed(address)
                refusal = (401, e.code, e.message, {"www-authenticate": "Bearer"})
            except StoreError as e:
                log.warning("cannot authenticate request %s: %s", request_id_of(scope), e)
                refusal = (503, "STORE_UNAVAILABLE", "the store is unavailable", {})
            # the key is named in the access log even when its request is refused for its rate
            state["principal"] = principal
            if principal is not None and self.rate_limiter is not None:
                decision = self.rate_limiter.take(principal.key_id)
                if not decision.allowed:
                    refusal = (
                        429,
                        "RATE_LIMITED",
                        f"too many requests for this key; retry in {decision.retry_after_header}s",
                        {"retry-after": decision.retry_after_header},
                    )
            if refusal is not None:
                await _refuse(send_tagged, *refusal)
                return
            if principal is not None and self.points_limiter is not None:
                state["points"] = (self.points_limiter, principal.key_id)
        await self.app(scope, receive, send_tagged)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.setdefault("state", {})
        state["principal"] = None
        headers = _headers(scope)
        credential = headers.get("authorization")
        if credential is None and _speaks_graphql_transport_ws(headers):
            # its key comes in its connection_init message (a browser cannot set headers on a
            # websocket): the GraphQL app checks it there, before any operation runs
            await self.app(scope, receive, send)
            return
        try:
            principal = await self._authenticate(scope, credential)
        except (AuthError, StoreError) as e:
            log.info("websocket %s refused: %s", scope["path"], e)
            await send({"type": "websocket.close", "code": _WEBSOCKET_POLICY_VIOLATION})
            return
        state["principal"] = principal
        await self.app(scope, receive, send)

    def _protected(self, path: str) -> bool:
        return path == self.protected_prefix or path.startswith(self.protected_prefix + "/")


def _headers(scope: Scope) -> Mapping[str, str]:
    """The request's headers, lower-case names; the first of repeated ones wins."""
    found: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        found.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return found


def _speaks_graphql_transport_ws(headers: Mapping[str, str]) -> bool:
    offered = headers.get("sec-websocket-protocol", "")
    return "graphql-transport-ws" in (p.strip() for p in offered.split(","))


def _client_address(scope: Scope) -> str:
    """The peer's address (behind a proxy, run uvicorn with --forwarded-allow-ips so that it
    is the client's)."""
    client = scope.get("client")
    return str(client[0]) if client else "-"


def _is_graphiql_page(scope: Scope, headers: Mapping[str, str]) -> bool:
    return (
        scope["method"] == "GET"
        and not scope.get("query_string")
        and "text/html" in headers.get("accept", "")
    )


def _store(scope: Scope) -> GraphStore:
    try:
        return scope["app"].state.store  # type: ignore[no-any-return]
    except (KeyError, AttributeError) as e:
        raise RuntimeError("AuthMiddleware needs the app's store in app.state.store") from e


async def _refuse(
    send: Send, status: int, code: str, message: str, extra_headers: Mapping[str, str]
) -> None:
    body = json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((name.encode(), value.encode()) for name, value in extra_headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
