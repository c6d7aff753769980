"""The access log: one line per HTTP request, and the request id every request carries.

`AccessLog` is the outermost middleware, so every request is counted once, whatever answers it
(a CORS preflight, a 413 for a body too large, a 401, a 429, GraphQL). It gives the request its
id (the caller's `X-Request-ID` when it is short and plain, else a new one) in
`request.state.request_id` and the `X-Request-ID` response header, and logs, on the
`crm_graph.access` logger at INFO:

    method, path (no query string), status, milliseconds, key id, request id,
    operation name, cost (the points the query asked for)

The key id is the public part of the key (set by the auth middleware in `state["principal"]`);
the operation name is the document's own name or `operationName` (a GraphQL name, nothing a
caller can put free text in), and the cost is the answer's `extensions.cost` when there is one
(both set by the GraphQL view in `state["access"]`). Never the key, never the query text, never
its variables, never an answer: no personal data.

`CRM_GRAPH_ACCESS_LOG` picks the form: `text` (the default) or `json` (one JSON object per
line), or `off`. `crm-graph serve` sends the lines to stderr (`configure_handler`).
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_graph.graph.errors import ConfigurationError

log = logging.getLogger("crm_graph.access")

SETTING = "CRM_GRAPH_ACCESS_LOG"
FORMATS = ("text", "json", "off")
AccessLogFormat = Literal["text", "json", "off"]
REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")
_IGNORED = r"(?:[\s,\ufeff]|#[^\n\r]*)*"
_OPERATION = re.compile(rf"{_IGNORED}(?:query|mutation|subscription)\s*([_A-Za-z][_0-9A-Za-z]*)")


def access_log_format(env: Mapping[str, str]) -> AccessLogFormat:
    """The form `CRM_GRAPH_ACCESS_LOG` asks for (`text` when unset); a `ConfigurationError`
    naming the setting for anything else."""
    value = env.get(SETTING, "").strip().lower() or "text"
    if value not in FORMATS:
        raise ConfigurationError(
            f"{SETTING} must be one of {', '.join(FORMATS)}, got {value[:40]!r}"
        )
    return value  # type: ignore[return-value]


def operation_name(given: object, document: object) -> str | None:
    """The name of the operation a request runs: `operationName` when it is a GraphQL name,
    else the name of the document's first operation when the document starts with a named one;
    None for an anonymous operation (or anything that is not a name)."""
    if isinstance(given, str):
        return given if _NAME.fullmatch(given) else None
    if isinstance(document, str):
        found = _OPERATION.match(document[:2000])
        if found and len(found.group(1)) <= 100:
            return found.group(1)
    return None


def request_id_of(scope: Scope) -> str:
    """The request id `AccessLog` gave this request (made here when it runs without one)."""
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        state["request_id"] = _request_id(_header(scope, REQUEST_ID_HEADER))
    return state["request_id"]  # type: ignore[no-any-return]


class AccessLog:
    """Tag every HTTP request with its id, and log one line for it once answered."""

    def __init__(self, app: ASGIApp, *, format: AccessLogFormat = "text") -> None:
        if format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
        self.app = app
        self.format = format

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id = _request_id(_header(scope, REQUEST_ID_HEADER))
        state.setdefault("principal", None)
        access: dict[str, Any] = {}
        state["access"] = access
        status = 500
        tag = (REQUEST_ID_HEADER.encode(), request_id.encode("latin-1"))

        async def send_tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), tag]}
            await send(message)

        try:
            await self.app(scope, receive, send_tagged)
        finally:
            if self.format != "off":
                principal = state.get("principal")
                entry = {
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                    "key": principal.key_id if principal is not None else None,
                    "request": request_id,
                    "operation": access.get("operation"),
                    "cost": access.get("cost"),
                }
                log.info(self._line(entry))

    def _line(self, entry: dict[str, Any]) -> str:
        if self.format == "json":
            stamped = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), **entry}
            return orjson.dumps(stamped).decode()
        return (
            f"{entry['method']} {entry['path']} {entry['status']} {entry['ms']:.1f}ms "
            f"key={entry['key'] or '-'} request={entry['request']} "
            f"operation={entry['operation'] or '-'} cost={_text(entry['cost'])}"
        )


def configure_handler(format: AccessLogFormat, stream: Any = None) -> None:
    """Send the access log to `stream` (stderr), one line per request, whatever the level of
    the other loggers: for `crm-graph serve`."""
    if format == "off":
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    pattern = "%(message)s" if format == "json" else "%(asctime)s access %(message)s"
    handler.setFormatter(logging.Formatter(pattern))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def _text(cost: object) -> str:
    if cost is None:
        return "-"
    return orjson.dumps(cost).decode() if isinstance(cost, dict | list) else str(cost)


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode()
    for key, value in scope.get("headers", ()):
        if key.lower() == wanted:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


def _request_id(given: str | None) -> str:
    if given is not None and _REQUEST_ID_PATTERN.fullmatch(given):
        return given
    return uuid.uuid4().hex
