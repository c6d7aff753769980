"""A real webhook receiver for tests: an HTTP/1.1 server on 127.0.0.1 (asyncio streams) that
records every POST it gets (headers and raw body) and answers as the test tells it to: a status,
a delay (a slow receiver), or not at all (`down`: the port closed)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    status: int = 200
    delay: float = 0.0
    answer: Callable[[Received], int] | None = None
    """Decides the status per request (overrides `status`)."""
    received: list[Received] = field(default_factory=list)
    arrivals: int = 0
    """Requests whose head was read (answered or not yet)."""
    _server: asyncio.Server | None = None
    _connections: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for connection in list(self._connections):  # down means down: kept-alive ones too
                connection.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def __aenter__(self) -> Receiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def accepted(self) -> list[Received]:
        """The requests answered 2xx."""
        return [r for r in self.received if 200 <= r.answered < 300]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.arrivals += 1
                if self.delay:
                    await asyncio.sleep(self.delay)
                got = Received(headers, body, 0)
                status = self.answer(got) if self.answer else self.status
                got.answered = status
                self.received.append(got)
                writer.write(
                    f"HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\nok".encode("latin-1")
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._connections.discard(writer)
            writer.close()


async def until(condition: Callable[[], Any], timeout: float = 30.0, step: float = 0.05) -> Any:
    """Poll `condition` (sync or async) until it is truthy or `timeout` passes (then fail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(step)
