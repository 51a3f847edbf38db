"""The gateway's shard client: one small interface, one module per implementation.

The fan-out sees only `UpstreamClient`, `UpstreamResponse` and the `UpstreamError`
hierarchy, so client libraries can be swapped without touching it. Timeouts are not
the client's job: the fan-out bounds every call with the request's deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from gateway.settings import GatewaySettings


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    body: bytes
    server_timing: str | None = None  # the shard's Server-Timing header, as sent


@dataclass(slots=True)
class CallTiming:
    """Filled in by the client as the call goes: when the response headers arrived
    (`time.perf_counter()`), so a slow body is told apart from a slow answer."""

    headers_at: float | None = None
    # The answer came from a hedge, sent later than the call's start.
    hedged: bool = False


@dataclass(frozen=True, slots=True)
class PoolStats:
    """The client's connection pool right now, read from the client itself."""

    active: int  # serving a call, or connecting
    idle: int
    pending: int  # calls waiting for a connection


@dataclass(frozen=True, slots=True)
class ConnectionHooks:
    """Called as the client opens and closes connections (for the pool counters)."""

    opened: Callable[[], None] = lambda: None
    closed: Callable[[], None] = lambda: None


class UpstreamClient(Protocol):
    """A pooled HTTP client for shard calls, one per worker, closed by the lifespan."""

    max_connections: int

    async def get(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        timing: CallTiming | None = None,
    ) -> UpstreamResponse: ...

    def pool_stats(self) -> PoolStats: ...

    async def aclose(self) -> None: ...


class UpstreamError(Exception):
    """A shard call failed below HTTP."""


class UpstreamConnectError(UpstreamError):
    """No connection could be made: the shard is down or refusing."""


class UpstreamResetError(UpstreamError):
    """The connection broke during the exchange (reset, or closed before the answer)."""


class UpstreamProtocolError(UpstreamError):
    """The shard answered something that is not valid HTTP."""


def _httpx(settings: GatewaySettings, hooks: ConnectionHooks) -> UpstreamClient:
    from gateway.upstream.httpx_client import HttpxUpstream

    return HttpxUpstream(settings.pool_max_connections, settings.pool_keepalive_s, hooks)


def _aiohttp(settings: GatewaySettings, hooks: ConnectionHooks) -> UpstreamClient:
    from gateway.upstream.aiohttp_client import AiohttpUpstream

    return AiohttpUpstream(settings.pool_max_connections, settings.pool_keepalive_s, hooks)


def _pyreqwest(settings: GatewaySettings, hooks: ConnectionHooks) -> UpstreamClient:
    from gateway.upstream.pyreqwest_client import PyreqwestUpstream

    return PyreqwestUpstream(
        settings.pool_max_connections,
        settings.pool_keepalive_s,
        # No call outlives the shard timeout once it holds a permit (gateway/fanout.py).
        settings.shard_timeout_ms / 1000.0,
        settings.shard_urls,
        hooks,
    )


UPSTREAM_CLIENTS: Mapping[str, Callable[[GatewaySettings, ConnectionHooks], UpstreamClient]] = {
    "httpx": _httpx,
    "aiohttp": _aiohttp,
    "pyreqwest": _pyreqwest,
}


def create_upstream(
    settings: GatewaySettings, hooks: ConnectionHooks | None = None
) -> UpstreamClient:
    return UPSTREAM_CLIENTS[settings.upstream_client](settings, hooks or ConnectionHooks())
