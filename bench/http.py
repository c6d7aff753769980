"""The benchmarks' HTTP client: JSON POSTs over HTTP/1.1 keep-alive connections to one plain
`http://host:port` server, on asyncio streams, and nothing else (no TLS, proxies, redirects,
cookies or compression).

The benchmarks measure the API server, but their client runs on the same machine and its own
time sits inside every latency they report: httpx spent 2.3 ms of CPU per 360 request here and
1.6 ms per `{ __typename }`, about half the server's work for the 360 and more than all of it
for the floor. This client spends 0.4 and 0.2 ms (see bench/api.py for the figures).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class HttpError(Exception):
    """The connection failed or the server's answer was not HTTP/1.1 this client reads."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class HttpClient:
    """JSON POSTs to `base_url` (`http://host:port`); each request takes an idle connection or
    opens one, so concurrent requests use as many connections as there are requests in flight.
    A request on a reused connection that the server closed meanwhile (an idle keep-alive
    connection times out) is sent again once, on a new connection."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname or parts.port is None:
            raise ValueError(f"expected http://host:port, got {base_url!r}")
        self.host, self.port, self.timeout = parts.hostname, parts.port, timeout
        self._head = f"host: {parts.netloc}\r\ncontent-type: application/json\r\n"
        self._idle: list[_Connection] = []

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()

    async def post_json(self, path: str, payload: Any, headers: dict[str, str] | None = None
                        ) -> Reply:  # fmt: skip
        body = json.dumps(payload, separators=(",", ":")).encode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        request = (
            f"POST {path} HTTP/1.1\r\n{self._head}{extra}content-length: {len(body)}\r\n\r\n"
        ).encode("latin-1") + body
        async with asyncio.timeout(self.timeout):
            while self._idle:
                connection = self._idle.pop()
                try:
                    return await self._exchange(connection, request)
                except _ClosedBeforeAnswer:
                    continue  # the server closed this idle connection: try another, or a new one
            try:
                connection = await asyncio.open_connection(self.host, self.port)
            except OSError as e:
                raise HttpError(f"cannot connect to {self.host}:{self.port}: {e}") from e
            try:
                return await self._exchange(connection, request)
            except _ClosedBeforeAnswer as e:
                raise HttpError("the server closed the connection without answering") from e

    async def _exchange(self, connection: _Connection, request: bytes) -> Reply:
        reader, writer = connection
        try:
            writer.write(request)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as e:
                if not e.partial:
                    raise _ClosedBeforeAnswer from e
                raise
            status, length, chunked, keep_alive = _parse_head(head)
            body = await (_read_chunked(reader) if chunked else reader.readexactly(length))
        except _ClosedBeforeAnswer:
            writer.close()
            raise
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            writer.close()
            if isinstance(e, ConnectionResetError | BrokenPipeError):
                raise _ClosedBeforeAnswer from e
            raise HttpError(f"bad answer from {self.host}:{self.port}: {e!r}") from e
        except BaseException:  # cancelled or timed out half-way: the connection is unusable
            writer.close()
            raise
        if keep_alive:
            self._idle.append(connection)
        else:
            writer.close()
        return Reply(status, body)


class _ClosedBeforeAnswer(Exception):
    pass


def _parse_head(head: bytes) -> tuple[int, int, bool, bool]:
    """Status, content length, chunked, keep-alive, from a response's status line and headers."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if version != "HTTP/1.1":
        raise ValueError(f"not an HTTP/1.1 status line: {lines[0]!r}")
    status = int(rest.split(" ", 1)[0])
    length, chunked, keep_alive = 0, False, True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = value == "chunked"
        elif name == "connection":
            keep_alive = "close" not in value
    return status, length, chunked, keep_alive


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers are sent to this client
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
