"""The httpx implementation of `UpstreamClient`."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import h11
import httpcore
import httpx
from httpcore._utils import is_socket_readable

from gateway.upstream import (
    CallTiming,
    ConnectionHooks,
    PoolStats,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamResetError,
    UpstreamResponse,
)
from gateway.upstream.slots import CallSlots


class HttpxUpstream:
    """One `httpx.AsyncClient`, HTTP/1.1, no proxies from the environment, at most
    `max_connections` calls on the wire at once (held by `CallSlots`).

    Its transport keeps one httpcore pool per shard. httpcore looks at every connection
    of a pool on each request, and at every connection again for each idle one (to count
    the idle ones), so one pool of 60 connections cost milliseconds per call (py-spy,
    20-way fan-out); a shard's own pool holds a handful.
    """

    def __init__(
        self, max_connections: int, keepalive_s: float, hooks: ConnectionHooks | None = None
    ) -> None:
        self.max_connections = max_connections
        self._slots = CallSlots(max_connections)
        self._transport = _PoolPerShard(max_connections, keepalive_s, hooks or ConnectionHooks())
        self._client = httpx.AsyncClient(
            transport=self._transport,
            timeout=httpx.Timeout(None),
            trust_env=False,
            follow_redirects=False,
        )

    def pool_stats(self) -> PoolStats:
        active = idle = 0
        for pool in self._transport.pools():
            connections = pool.connections
            pool_idle = sum(connection.is_idle() for connection in connections)
            active += len(connections) - pool_idle
            idle += pool_idle
        return PoolStats(active, idle, self._slots.waiting)

    async def get(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        timing: CallTiming | None = None,
    ) -> UpstreamResponse:
        async with self._slots:
            return await self._get(url, headers, timing)

    async def _get(
        self, url: str, headers: Mapping[str, str] | None, timing: CallTiming | None
    ) -> UpstreamResponse:
        request = self._client.build_request("GET", url, headers=headers)
        try:
            response = await self._client.send(request, stream=True)
            try:
                if timing is not None:
                    timing.headers_at = time.perf_counter()
                body = await response.aread()
            finally:
                await response.aclose()
        except httpx.ConnectError as exc:
            raise UpstreamConnectError(str(exc) or "connection refused") from exc
        except httpx.RemoteProtocolError as exc:
            if _caused_by(exc, h11.RemoteProtocolError):
                raise UpstreamProtocolError(f"invalid HTTP from shard: {exc}") from exc
            raise UpstreamResetError("shard closed the connection before answering") from exc
        except httpx.NetworkError as exc:
            raise UpstreamResetError(str(exc) or "connection reset") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(type(exc).__name__) from exc
        return UpstreamResponse(response.status_code, body, response.headers.get("server-timing"))

    async def aclose(self) -> None:
        await self._client.aclose()


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _PoolPerShard(httpx.AsyncBaseTransport):
    """httpx's own transport, one per shard (origin), each over an httpcore pool whose
    network backend counts connections (httpx neither reports its pool nor takes a
    backend, so the pool is built here and given to the transport)."""

    def __init__(self, max_connections: int, keepalive_s: float, hooks: ConnectionHooks) -> None:
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._backend = _CountingBackend(hooks)
        self._transports: dict[tuple[bytes, bytes, int | None], httpx.AsyncHTTPTransport] = {}

    def pools(self) -> list[httpcore.AsyncConnectionPool]:
        return [transport._pool for transport in self._transports.values()]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port)
        transport = self._transports.get(origin)
        if transport is None:
            transport = self._transports[origin] = httpx.AsyncHTTPTransport(trust_env=False)
            transport._pool = httpcore.AsyncConnectionPool(
                max_connections=self._max_connections,
                max_keepalive_connections=self._max_connections,
                keepalive_expiry=self._keepalive_s,
                network_backend=self._backend,
            )
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        for transport in self._transports.values():
            await transport.aclose()


class _CountingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's asyncio backend, reporting each connection opened and closed."""

    def __init__(self, hooks: ConnectionHooks) -> None:
        self._backend = httpcore.AnyIOBackend()
        self._hooks = hooks

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        self._hooks.opened()
        return _CountedStream(stream, self._hooks.closed)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_unix_socket(path, timeout, socket_options)
        self._hooks.opened()
        return _CountedStream(stream, self._hooks.closed)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _CountedStream(httpcore.AsyncNetworkStream):
    """A connection that reports its closing. Its socket is looked up once: httpcore asks
    whether each idle connection is readable on every request, and anyio builds a table of
    every attribute to answer each time (a third of httpx's CPU in a profile)."""

    def __init__(self, stream: httpcore.AsyncNetworkStream, closed: Callable[[], None]) -> None:
        self._stream = stream
        self._closed: Callable[[], None] | None = closed
        self._socket = stream.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        if self._closed is not None:
            self._closed()
            self._closed = None
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._stream.start_tls(ssl_context, server_hostname, timeout)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return is_socket_readable(self._socket)
        if info == "socket":
            return self._socket
        return self._stream.get_extra_info(info)
