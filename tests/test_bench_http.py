"""The benchmarks' HTTP client against small servers written inline: what it sends, the answers
it reads (length, chunked, close), keep-alive reuse, and a server that drops an idle
connection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bench.http import HttpClient, HttpError

Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]
"""Answers one request (its head and body); returns whether to keep the connection."""


class Server:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                if not await self.handler(request, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Server]]]:
    servers: list[Server] = []

    async def start(handler: Handler) -> Server:
        server = Server(handler)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def echo(extra_headers: bytes = b"", keep: bool = True) -> Handler:
    """Answers 200 with the request's JSON body under "got" (content-length)."""

    async def handle(request: bytes, writer: asyncio.StreamWriter) -> bool:
        got = json.loads(request.split(b"\r\n\r\n", 1)[1])
        body = json.dumps({"got": got}).encode()
        length = b"content-length: %d\r\n\r\n" % len(body)
        writer.write(b"HTTP/1.1 200 OK\r\n" + extra_headers + length + body)
        await writer.drain()
        return keep

    return handle


async def test_posts_json_and_reuses_the_connection(serve: Callable[..., Any]) -> None:
    server = await serve(echo())
    async with HttpClient(server.url) as client:
        for n in range(3):
            reply = await client.post_json("/graphql", {"n": n}, {"authorization": "Bearer k"})
            assert (reply.status, reply.json()) == (200, {"got": {"n": n}})
    assert server.connections == 1
    head = server.requests[0].split(b"\r\n\r\n")[0].decode().split("\r\n")
    assert head[0] == "POST /graphql HTTP/1.1"
    assert {"content-type: application/json", "authorization: Bearer k"} <= set(head[1:])


async def test_concurrent_requests_open_a_connection_each(serve: Callable[..., Any]) -> None:
    server = await serve(echo())
    async with HttpClient(server.url) as client:
        replies = await asyncio.gather(*(client.post_json("/", {"n": n}) for n in range(4)))
        assert [r.json()["got"]["n"] for r in replies] == [0, 1, 2, 3]
        await client.post_json("/", {})
    assert server.connections == 4


async def test_connection_close_is_honoured(serve: Callable[..., Any]) -> None:
    server = await serve(echo(b"connection: close\r\n", keep=False))
    async with HttpClient(server.url) as client:
        for _ in range(2):
            assert (await client.post_json("/", {})).status == 200
    assert server.connections == 2


async def test_a_chunked_answer_and_an_error_status(serve: Callable[..., Any]) -> None:
    async def chunked(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 413 Payload Too Large\r\ntransfer-encoding: chunked\r\n\r\n"
                     b"5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\n\r\n")  # fmt: skip
        return True

    server = await serve(chunked)
    async with HttpClient(server.url) as client:
        reply = await client.post_json("/", {})
        assert (reply.status, reply.json(), reply.text) == (413, {"a": 1}, '{"a": 1}')


async def test_an_idle_connection_the_server_dropped_is_replaced(
    serve: Callable[..., Any],
) -> None:
    server = await serve(echo(keep=False))  # closes without saying so, like an idle timeout
    async with HttpClient(server.url) as client:
        await client.post_json("/", {"n": 1})
        await asyncio.sleep(0.05)
        assert (await client.post_json("/", {"n": 2})).json() == {"got": {"n": 2}}
    assert server.connections == 2


async def test_a_server_that_answers_nothing_is_an_error(serve: Callable[..., Any]) -> None:
    async def hang_up(request: bytes, writer: asyncio.StreamWriter) -> bool:
        return False

    server = await serve(hang_up)
    async with HttpClient(server.url) as client:
        with pytest.raises(HttpError, match="closed the connection"):
            await client.post_json("/", {})


async def test_nothing_listening_is_an_error(serve: Callable[..., Any]) -> None:
    server = await serve(echo())
    await server.stop()
    async with HttpClient(server.url) as client:
        with pytest.raises(HttpError, match="cannot connect"):
            await client.post_json("/", {})


def test_only_plain_http_urls_with_a_port() -> None:
    for url in ("https://127.0.0.1:1", "http://127.0.0.1", "127.0.0.1:80"):
        with pytest.raises(ValueError, match="http://host:port"):
            HttpClient(url)
