"""The httpx implementation of `UpstreamClient`."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import h11
import httpcore
import httpx

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


class HttpxUpstream:
    """One `httpx.AsyncClient` with a bounded pool; HTTP/1.1, no proxies from the environment."""

    def __init__(
        self, max_connections: int, keepalive_s: float, hooks: ConnectionHooks | None = None
    ) -> None:
        self.max_connections = max_connections
        transport = httpx.AsyncHTTPTransport(trust_env=False)
        # httpx neither reports its pool nor takes a network backend, so the transport is
        # given a pool built here: httpcore's own, with a backend that counts connections.
        self._pool = httpcore.AsyncConnectionPool(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_s,
            network_backend=_CountingBackend(hooks or ConnectionHooks()),
        )
        transport._pool = self._pool
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(None),
            trust_env=False,
            follow_redirects=False,
        )

    def pool_stats(self) -> PoolStats:
        connections = self._pool.connections
        idle = sum(connection.is_idle() for connection in connections)
        # httpcore keeps queued calls in a private list; its own __repr__ counts them so.
        pending = sum(request.is_queued() for request in self._pool._requests)
        return PoolStats(len(connections) - idle, idle, pending)

    async def get(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        timing: CallTiming | None = None,
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
    def __init__(self, stream: httpcore.AsyncNetworkStream, closed: Callable[[], None]) -> None:
        self._stream = stream
        self._closed: Callable[[], None] | None = closed

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
        return self._stream.get_extra_info(info)
