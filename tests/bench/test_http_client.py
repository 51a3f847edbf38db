"""The load generator's HTTP client against small real servers on loopback: keep-alive
reuse within its limit, one request per connection when asked, and each way a server
can fail it named as the generator counts it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httptools
import pytest

from shardstack.bench.http_client import ConnectionClosed, HttpPool
from tests.support import HOST, free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _answer(body: bytes = b"ok", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def _serve(handler: Handler) -> tuple[asyncio.Server, str, list[int]]:
    """A server whose every connection runs `handler`; the list counts connections."""
    connections: list[int] = []

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    port = free_port()
    server = await asyncio.start_server(counted, HOST, port)
    return server, f"http://{HOST}:{port}/path?q=1", connections


async def _keep_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while head := await reader.readuntil(b"\r\n\r\n"):
        assert head.startswith(b"GET /path?q=1 HTTP/1.1\r\n")
        await asyncio.sleep(0.01)
        writer.write(_answer(head.split(b"x-n: ")[1].split(b"\r\n")[0]))
        await writer.drain()


def test_requests_share_at_most_limit_kept_alive_connections() -> None:
    async def scenario() -> None:
        server, url, connections = await _serve(_keep_answering)
        pool = HttpPool(url, limit=3)
        answers = await asyncio.gather(*(pool.get({"x-n": str(n)}) for n in range(30)))
        assert answers == [(200, str(n).encode()) for n in range(30)]
        assert len(connections) == 3
        await pool.aclose()
        server.close()

    asyncio.run(scenario())


def test_without_keep_alive_every_request_has_its_own_connection() -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"connection: close\r\n" in head
        writer.write(_answer(extra=b"connection: close\r\n"))

    async def scenario() -> None:
        server, url, connections = await _serve(once)
        pool = HttpPool(url, limit=2, keep_alive=False)
        assert [await pool.get() for _ in range(5)] == [(200, b"ok")] * 5
        assert len(connections) == 5
        server.close()

    asyncio.run(scenario())


def test_each_failure_is_named_and_frees_its_connection() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort")

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"\x00\x01 not http at all\r\n\r\n")
        await asyncio.sleep(1)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def scenario() -> None:
        with pytest.raises(ConnectionRefusedError):
            await HttpPool(f"http://{HOST}:{free_port()}/", limit=1).get()
        for handler, error in ((cut, ConnectionClosed), (garbage, httptools.HttpParserError)):
            server, url, _ = await _serve(handler)
            pool = HttpPool(url, limit=1)
            for _ in range(2):  # the one slot is free again after each failure
                with pytest.raises(error):
                    await asyncio.wait_for(pool.get(), 5)
            server.close()
        server, url, connections = await _serve(silent)
        pool = HttpPool(url, limit=1)
        for _ in range(2):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await pool.get()
        assert len(connections) == 2  # a timed-out connection is not used again
        await pool.aclose()
        server.close()

    asyncio.run(scenario())


def test_only_plain_http_urls_are_taken() -> None:
    with pytest.raises(ValueError, match="plain http"):
        HttpPool("https://example.org/", limit=1)


def test_a_kept_connection_closed_before_answering_again_is_retried_once() -> None:
    """The keep-alive race: the server closes an idle connection as a request goes out
    on it; a GET goes again on a new one. A first request on a connection is not."""

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(_answer())
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")  # the next request: closed unanswered

    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")

    async def scenario() -> None:
        server, url, connections = await _serve(answer_once)
        pool = HttpPool(url, limit=1)
        assert [await pool.get() for _ in range(3)] == [(200, b"ok")] * 3
        assert len(connections) == 3
        server.close()
        server, url, connections = await _serve(never)
        with pytest.raises(ConnectionClosed):
            await HttpPool(url, limit=1).get()
        assert len(connections) == 1
        server.close()

    asyncio.run(scenario())
