"""The aiohttp implementation of `UpstreamClient`."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import aiohttp
from aiohttp.client_proto import ResponseHandler

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


class AiohttpUpstream:
    """One `aiohttp.ClientSession`, at most `max_connections` calls on the wire at once; no
    proxies from the environment, no decompression (shards answer plain JSON).

    aiohttp's own `limit` counts only connections it must open: an idle keep-alive
    connection is handed out without looking at it, so after calls to many shards more
    than `limit` can be busy at once. The cap is therefore held by `CallSlots` around
    each call. Idle connections (at most one per shard per call that ran at once) close
    after `keepalive_s`.
    """

    def __init__(
        self, max_connections: int, keepalive_s: float, hooks: ConnectionHooks | None = None
    ) -> None:
        self.max_connections = max_connections
        self._slots = CallSlots(max_connections)
        self._connector = _CountingConnector(
            hooks or ConnectionHooks(),
            limit=max_connections,
            limit_per_host=0,
            keepalive_timeout=keepalive_s,
        )
        self._session = aiohttp.ClientSession(
            connector=self._connector,
            timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=False,
            trust_env=False,
        )
        # aiohttp silently sends an idempotent request again when a reused connection
        # breaks. That would hide faults (a reset shard answering on the second try) and
        # double shard calls no metric sees; whether to retry is the gateway's decision.
        # There is no public switch; aiohttp's own test client turns it off the same way.
        self._session._retry_connection = False

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
        try:
            async with self._session.get(url, headers=headers, allow_redirects=False) as response:
                if timing is not None:
                    timing.headers_at = time.perf_counter()
                connection = response.connection
                handler = None if connection is None else connection.protocol
                try:
                    body = await response.read()
                except aiohttp.ClientPayloadError as exc:
                    # aiohttp says why the body stopped only in its message; the handler
                    # saw how the connection ended.
                    if isinstance(handler, _CountedResponseHandler) and isinstance(
                        handler.lost_with, ConnectionResetError
                    ):
                        raise UpstreamResetError("connection reset during the body") from exc
                    raise UpstreamProtocolError(f"incomplete body from shard: {exc}") from exc
                timing_header = response.headers.get("server-timing")
                return UpstreamResponse(response.status, body, timing_header)
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamConnectError(str(exc.os_error) or "connection refused") from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise UpstreamResetError("shard closed the connection before answering") from exc
        except aiohttp.ClientResponseError as exc:
            raise UpstreamProtocolError(f"invalid HTTP from shard: {exc.message}") from exc
        except (aiohttp.ClientOSError, ConnectionResetError) as exc:
            raise UpstreamResetError(str(exc) or "connection reset") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(type(exc).__name__) from exc

    def pool_stats(self) -> PoolStats:
        active, idle = self._connector.connection_counts()
        return PoolStats(active, idle, self._slots.waiting)

    async def aclose(self) -> None:
        await self._session.close()


class _CountingConnector(aiohttp.TCPConnector):
    """aiohttp's connector, reporting each connection opened and closed, and its pool.

    aiohttp has no public view of its pool and no hook for a closed connection, so this
    reads the connector's own bookkeeping and gives it a protocol that reports closing.
    (The waiters for a slot are counted by `AiohttpUpstream`, which holds the cap.)
    """

    def __init__(self, hooks: ConnectionHooks, **options: Any) -> None:
        super().__init__(**options)
        self._factory = cast(
            "functools.partial[ResponseHandler]",
            functools.partial(_CountedResponseHandler, hooks, loop=asyncio.get_running_loop()),
        )

    def connection_counts(self) -> tuple[int, int]:
        """(in use, idle)."""
        idle = sum(len(connections) for connections in self._conns.values())
        return len(self._acquired), idle


class _CountedResponseHandler(ResponseHandler):
    def __init__(self, hooks: ConnectionHooks, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self._report_opened = hooks.opened
        self._report_closed: Callable[[], None] | None = hooks.closed
        self.lost_with: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._report_opened()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost_with = exc
        if self._report_closed is not None:
            self._report_closed()
            self._report_closed = None
        super().connection_lost(exc)
