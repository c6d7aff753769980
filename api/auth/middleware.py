"""The ASGI middleware that lets a request reach the GraphQL endpoint only with a valid key.

Under `protected_prefix` (default `/graphql`), an HTTP request needs `Authorization: Bearer
<key>`: the principal goes into `request.state.principal` and the app runs; otherwise the
answer is 401 (or 429 over the key's rate, 503 when the store cannot say) and nothing runs.
The one exception is the GraphiQL page: a GET asking for `text/html` with no query string
(Strawberry renders the IDE and executes nothing). A WebSocket under the prefix needs the
header too, or is closed before it is accepted. Paths outside the prefix are open, with
`request.state.principal` None.

Every HTTP request gets a request id (the caller's `X-Request-ID` when it is short and plain,
else a new one) in `request.state.request_id` and the `X-Request-ID` response header, and one
log line: method, path (no query string), status, milliseconds, key id, request id. Never the
key, never the query or its variables.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_graph.api.auth.cache import KeyCache
from crm_graph.api.auth.keys import authenticate
from crm_graph.api.auth.principal import AuthError, Principal
from crm_graph.api.auth.ratelimit import RateLimiter
from crm_graph.graph.errors import StoreError
from crm_graph.graph.store import GraphStore

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_WEBSOCKET_POLICY_VIOLATION = 1008


class AuthMiddleware:
    """Authenticate requests under `protected_prefix`, rate-limit them per key, tag and log
    every request. The store is the app's: `scope["app"].state.store`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        protected_prefix: str = "/graphql",
        rate_limiter: RateLimiter | None = None,
        key_cache: KeyCache | None = None,
    ) -> None:
        if not protected_prefix.startswith("/") or protected_prefix.endswith("/"):
            raise ValueError(
                f"protected_prefix must start with / and not end with one, got {protected_prefix!r}"
            )
        self.app = app
        self.protected_prefix = protected_prefix
        self.rate_limiter = rate_limiter
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
        started = time.perf_counter()
        headers = _headers(scope)
        request_id = _request_id(headers.get(REQUEST_ID_HEADER))
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["principal"] = None
        status = 500
        principal: Principal | None = None

        async def send_tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", ()),
                        (b"x-request-id", request_id.encode("latin-1")),
                    ],
                }
            await send(message)

        try:
            if self._protected(scope["path"]) and not _is_graphiql_page(scope, headers):
                refusal: tuple[int, str, str, dict[str, str]] | None = None
                try:
                    principal = await self._authenticate(scope, headers.get("authorization"))
                except AuthError as e:
                    refusal = (401, e.code, e.message, {"www-authenticate": "Bearer"})
                except StoreError as e:
                    log.warning("cannot authenticate request %s: %s", request_id, e)
                    refusal = (503, "STORE_UNAVAILABLE", "the store is unavailable", {})
                if principal is not None and self.rate_limiter is not None:
                    decision = self.rate_limiter.take(principal.key_id)
                    if not decision.allowed:
                        refusal = (
                            429,
                            "RATE_LIMITED",
                            f"too many requests for this key; retry in "
                            f"{decision.retry_after_header}s",
                            {"retry-after": decision.retry_after_header},
                        )
                if refusal is not None:
                    await _refuse(send_tagged, *refusal)
                    return
                state["principal"] = principal
            await self.app(scope, receive, send_tagged)
        finally:
            log.info(
                "%s %s %d %.1fms key=%s request=%s",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
                principal.key_id if principal else "-",
                request_id,
            )

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.setdefault("state", {})
        state["principal"] = None
        try:
            principal = await self._authenticate(scope, _headers(scope).get("authorization"))
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


def _request_id(given: str | None) -> str:
    if given is not None and _REQUEST_ID_PATTERN.fullmatch(given):
        return given
    return uuid.uuid4().hex


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
