"""A graphql-transport-ws client for the tests (the `websockets` package), and a real uvicorn
serving an app in the test's own event loop (its store is the test's)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

PROTOCOL = Subprotocol("graphql-transport-ws")
WAIT = 30.0
"""Seconds a test waits for a message it expects (a slow shared machine); a message it expects
not to come is checked by a later one that must come after it."""


@contextlib.asynccontextmanager
async def uvicorn_serving(app: ASGIApp) -> AsyncIterator[str]:
    """`app` served by uvicorn on a free 127.0.0.1 port, in this event loop; its http URL (port
    0: the kernel picks the port as it binds, so no other server can take it in between)."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


class Refused(Exception):
    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed {code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass
class Subscriber:
    """One websocket speaking graphql-transport-ws, acknowledged."""

    ws: ClientConnection
    ack: dict[str, Any]
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _inbox: dict[str, asyncio.Queue[dict[str, Any]]] = field(default_factory=dict)
    _reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                message = json.loads(raw)
                if "id" in message:
                    self._inbox.setdefault(message["id"], asyncio.Queue()).put_nowait(message)

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        operation = str(next(self._ids))
        self._inbox.setdefault(operation, asyncio.Queue())
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        await self.ws.send(json.dumps({"id": operation, "type": "subscribe", "payload": payload}))
        return operation

    async def message(self, operation: str, timeout: float = WAIT) -> dict[str, Any]:
        """The next message of `operation` (next, error or complete)."""
        queue = self._inbox.setdefault(operation, asyncio.Queue())
        return await asyncio.wait_for(queue.get(), timeout)

    async def next(self, operation: str, timeout: float = WAIT) -> dict[str, Any]:
        """The payload of the next `next` message of `operation` (failing on anything else)."""
        message = await self.message(operation, timeout)
        assert message["type"] == "next", message
        return message["payload"]  # type: ignore[no-any-return]

    def pending(self, operation: str) -> int:
        return self._inbox.setdefault(operation, asyncio.Queue()).qsize()

    async def complete(self, operation: str) -> None:
        await self.ws.send(json.dumps({"id": operation, "type": "complete"}))

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            await self._reader


def ws_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://", 1) + "/graphql"


@contextlib.asynccontextmanager
async def subscriber(
    http_url: str,
    payload: dict[str, Any] | None,
    *,
    headers: dict[str, str] | None = None,
    origin: str | None = None,
) -> AsyncIterator[Subscriber]:
    """An acknowledged connection (`connection_init` with `payload`), or `Refused` with the
    close code and reason the server gave."""
    try:
        ws = await connect(
            ws_url(http_url), subprotocols=[PROTOCOL], additional_headers=headers or {},
            origin=origin, open_timeout=WAIT,  # type: ignore[arg-type]
        )  # fmt: skip
    except Exception as e:  # a handshake refused (HTTP 403)
        raise Refused(None, str(e)) from e
    try:
        init: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            init["payload"] = payload
        await ws.send(json.dumps(init))
        try:
            raw = await asyncio.wait_for(ws.recv(), WAIT)
        except ConnectionClosed as e:
            raise Refused(e.rcvd.code if e.rcvd else None, e.rcvd.reason if e.rcvd else "") from e
        ack = json.loads(raw)
        assert ack["type"] == "connection_ack", ack
        client = Subscriber(ws, ack)
        client.start()
        yield client
    finally:
        await ws.close()
