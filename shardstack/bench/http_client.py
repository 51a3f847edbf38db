"""The load generator's HTTP/1.1 client: GET one URL over a bounded pool of keep-alive
connections, each an asyncio protocol whose answers httptools parses (the C parser
uvicorn uses).

Its own rather than aiohttp's: the generator shares the cores with the server it
measures, so every microsecond it spends is taken from the server. In an open loop of
2,450 requests a second against one shard, aiohttp's client cost 99-110 µs of CPU per
request and this one 44-49 µs (the same run, alternating).
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections import deque
from collections.abc import Mapping
from typing import cast

import httptools

Answer = tuple[int, bytes]


class ConnectionClosed(ConnectionError):
    """The server closed the connection before a whole answer."""


class HttpPool:
    """At most `limit` connections to the host of `url`, reused while the server keeps
    them alive (`keep_alive=False`: one request per connection)."""

    def __init__(self, url: str, limit: int, keep_alive: bool = True) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"{url}: the load generator speaks plain http:// only")
        self._host, self._port = parts.hostname, parts.port or 80
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        close = b"" if keep_alive else b"connection: close\r\n"
        self._head = f"GET {target} HTTP/1.1\r\nhost: {parts.netloc}\r\n".encode() + close
        self._keep_alive = keep_alive
        self._limit = limit
        self._opened = 0  # open or being opened
        # Idle connections, the longest idle first: requests spread over every connection
        # the pool has, as independent clients would, rather than piling onto the last
        # one used (which a server may be pacing after refusing it).
        self._idle: deque[_Connection] = deque()
        # Requests waiting for a connection: handed one, or None (a slot to open one in).
        self._waiting: deque[asyncio.Future[_Connection | None]] = deque()
        self._all: set[_Connection] = set()

    async def get(self, headers: Mapping[str, str] | None = None) -> Answer:
        """(status, body) of one GET; `OSError` if no connection could be made,
        `ConnectionClosed` if the server closed it first, `httptools.HttpParserError` if
        the answer is not HTTP."""
        request = self._head
        if headers:
            request += "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode()
        request += b"\r\n"
        connection = await self._acquire()
        try:
            try:
                status, body, reusable = await connection.exchange(request)
            except ConnectionClosed:
                if not connection.stale:
                    raise
                # Closed by the server as it sat idle, before a byte of this answer (the
                # race every keep-alive client meets): a GET goes again, on another.
                connection = await self._acquire()
                status, body, reusable = await connection.exchange(request)
        except BaseException:
            connection.abort()  # a timeout or a broken answer: its state is unknown
            raise
        if reusable and self._keep_alive:
            self._release(connection)
        else:
            connection.close()
        return status, body

    async def aclose(self) -> None:
        for connection in list(self._all):
            connection.abort()
        await asyncio.sleep(0)  # let the transports report their ends

    async def _acquire(self) -> _Connection:
        while True:
            connection = await self._next()
            if connection.usable:  # the server may have closed an idle one meanwhile
                return connection

    async def _next(self) -> _Connection:
        while self._idle:
            connection = self._idle.popleft()
            if connection.usable:
                return connection
        if self._opened < self._limit:
            self._opened += 1
            return await self._open()
        turn: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            handed = await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._give_back(turn.result())
            raise
        return await self._open() if handed is None else handed

    async def _open(self) -> _Connection:
        """A new connection in a slot already counted in `_opened`."""
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                lambda: _Connection(self), self._host, self._port
            )
        except BaseException:
            self._give_back(None)
            raise
        self._all.add(connection)
        return connection

    def _give_back(self, handed: _Connection | None) -> None:
        if handed is None:
            self._opened -= 1
            self._hand_slot()
        else:
            self._release(handed)

    def _release(self, connection: _Connection) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(connection)
                return
        self._idle.append(connection)

    def _hand_slot(self) -> None:
        """A connection's slot is free: let the first waiting request open one in it."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                self._opened += 1
                turn.set_result(None)
                return

    def _lost(self, connection: _Connection) -> None:
        self._all.discard(connection)
        self._opened -= 1
        self._hand_slot()


class _Connection(asyncio.Protocol):
    """One connection, one request at a time."""

    def __init__(self, pool: HttpPool) -> None:
        self._pool = pool
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self._body: list[bytes] = []
        self._answered = 0
        self._started = False  # a byte of the current answer has come
        self.usable = False

    @property
    def stale(self) -> bool:
        """Closed after answering before, and before a byte of the current answer."""
        return self._answered > 0 and not self._started

    def exchange(self, request: bytes) -> asyncio.Future[tuple[int, bytes, bool]]:
        assert self._transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._started = False
        self._transport.write(request)
        return self._answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's, only alike.
        self._transport = cast(asyncio.Transport, transport)
        self.usable = True

    def data_received(self, data: bytes) -> None:
        if self._answer is None:
            self.abort()  # nothing was asked: not a server to keep talking to
            return
        self._started = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)
            self.abort()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        answer, self._answer = self._answer, None
        body = b"".join(self._body)
        self._body.clear()
        self._answered += 1
        if answer is not None and not answer.done():
            status = self._parser.get_status_code()
            answer.set_result((status, body, self._parser.should_keep_alive()))

    def connection_lost(self, exc: Exception | None) -> None:
        self.usable = False
        self._fail(ConnectionClosed("the server closed the connection"))
        self._pool._lost(self)

    def _fail(self, exc: Exception) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(exc)

    def close(self) -> None:
        self.usable = False
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        self.usable = False
        if self._transport is not None:
            self._transport.abort()
