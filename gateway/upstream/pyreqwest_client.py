"""The pyreqwest implementation of `UpstreamClient` (Rust: reqwest over hyper and tokio)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta

from pyreqwest import exceptions
from pyreqwest.client import Client, ClientBuilder

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
from gateway.upstream.socket_census import SocketCensus

CENSUS_INTERVAL_S = 1.0


class PyreqwestUpstream:
    """One `pyreqwest.Client`: HTTP/1.1, no proxies, redirects or decompression, at most
    `max_connections` calls on the wire at once (held by `CallSlots`).

    hyper keeps idle connections per shard, at most a shard's share of `max_connections`
    each, closed after `keepalive_s`. It sends a request again only if it never left
    (a pooled connection found closed before writing), so no shard sees a call twice.
    Its pool is not visible from Python, so connections are counted from the worker's
    own descriptors (`SocketCensus`).

    Cancelling the Python side does not stop the call in Rust (pyreqwest 0.15): the
    call runs on, to its answer or to `call_timeout_s`, on its connection. So each call,
    once it has its slot, runs in a task of its own that keeps the slot until then: a
    caller that gives up returns at once, the cap still counts what is on the wire, and
    no connection is left waiting for an answer nobody reads.
    """

    def __init__(
        self,
        max_connections: int,
        keepalive_s: float,
        call_timeout_s: float,
        shard_urls: Sequence[str],
        hooks: ConnectionHooks | None = None,
    ) -> None:
        self.max_connections = max_connections
        self._slots = CallSlots(max_connections)
        self._census = SocketCensus(shard_urls, hooks or ConnectionHooks())
        self._census_due = 0.0
        self._connections = 0
        self._client: Client = (
            ClientBuilder()
            .http1_only()
            .no_proxy()
            .follow_redirects(False)
            .referer(False)
            .gzip(False)
            .brotli(False)
            .zstd(False)
            .deflate(False)
            .timeout(timedelta(seconds=call_timeout_s))
            .pool_idle_timeout(timedelta(seconds=keepalive_s))
            .pool_max_idle_per_host(math.ceil(max_connections / max(1, len(shard_urls))))
            .build()
        )

    async def get(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        timing: CallTiming | None = None,
    ) -> UpstreamResponse:
        await self._slots.acquire()
        try:
            call = asyncio.ensure_future(self._on_the_wire(url, headers, timing))
            call.add_done_callback(_retrieved)
        except BaseException:
            self._slots.release()
            raise
        return await asyncio.shield(call)

    async def _on_the_wire(
        self, url: str, headers: Mapping[str, str] | None, timing: CallTiming | None
    ) -> UpstreamResponse:
        try:
            return await self._get(url, headers, timing)
        finally:
            self._slots.release()

    async def _get(
        self, url: str, headers: Mapping[str, str] | None, timing: CallTiming | None
    ) -> UpstreamResponse:
        # Nothing read ahead: the response comes back as soon as its headers do, so a slow
        # body is told apart from a slow answer.
        request = self._client.get(url).streamed_read_buffer_limit(0)
        if headers:
            request = request.headers(headers)
        try:
            async with request.build_streamed() as response:
                if timing is not None:
                    timing.headers_at = time.perf_counter()
                body = await response.bytes()
                return UpstreamResponse(
                    response.status, bytes(body), response.get_header("server-timing")
                )
        except exceptions.ConnectError as exc:
            # reqwest calls any failure before the answer a connect error; hyper's causes
            # say whether the connection was never made.
            if "client error (Connect)" in _causes(exc):
                raise UpstreamConnectError(_reason(exc, "connection refused")) from exc
            raise UpstreamResetError(_reason(exc, "connection reset")) from exc
        except exceptions.ReadError as exc:
            raise UpstreamResetError(_reason(exc, "connection reset during the body")) from exc
        except exceptions.DecodeError as exc:
            if isinstance(exc, exceptions.BodyDecodeError) or _body_failed(exc):
                raise UpstreamProtocolError(f"incomplete body from shard: {_reason(exc)}") from exc
            raise UpstreamProtocolError(f"invalid HTTP from shard: {_reason(exc)}") from exc
        except exceptions.RequestError as exc:
            # A body cut short while streamed comes as a bare RequestError.
            if _body_failed(exc):
                raise UpstreamProtocolError(f"incomplete body from shard: {_reason(exc)}") from exc
            raise UpstreamError(_reason(exc, type(exc).__name__)) from exc
        except exceptions.PyreqwestError as exc:
            raise UpstreamError(type(exc).__name__) from exc

    def pool_stats(self) -> PoolStats:
        now = time.monotonic()
        if now >= self._census_due:
            # A count stats every descriptor, thousands with many clients held: once a
            # second, not at every sample.
            self._census_due = now + CENSUS_INTERVAL_S
            self._connections = self._census.count()
        active = self._slots.in_use
        # A call counts as active from its slot on, before its connection exists.
        return PoolStats(active, max(0, self._connections - active), self._slots.waiting)

    async def aclose(self) -> None:
        await self._client.close()
        # Its pooled connections close only when the client itself is dropped.
        del self._client


def _retrieved(call: asyncio.Future[UpstreamResponse]) -> None:
    """A call whose caller gave up ends unread: its error is nobody's to log."""
    if not call.cancelled():
        call.exception()


def _causes(exc: exceptions.PyreqwestError) -> list[str]:
    details = getattr(exc, "details", None) or {}
    return [cause["message"] for cause in details.get("causes") or []]


def _body_failed(exc: exceptions.PyreqwestError) -> bool:
    return "error reading a body from connection" in _causes(exc)


def _reason(exc: exceptions.PyreqwestError, default: str = "") -> str:
    """The innermost cause: what the socket or the parser said."""
    causes = _causes(exc)
    return causes[-1] if causes else default
