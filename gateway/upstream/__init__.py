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


@dataclass(slots=True)
class CallTiming:
    """Filled in by the client as the call goes: when the response headers arrived
    (`time.perf_counter()`), so a slow body is told apart from a slow answer."""

    headers_at: float | None = None


class UpstreamClient(Protocol):
    """A pooled HTTP client for shard calls, one per worker, closed by the lifespan."""

    async def get(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        timing: CallTiming | None = None,
    ) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


class UpstreamError(Exception):
    """A shard call failed below HTTP."""


class UpstreamConnectError(UpstreamError):
    """No connection could be made: the shard is down or refusing."""


class UpstreamResetError(UpstreamError):
    """The connection broke during the exchange (reset, or closed before the answer)."""


class UpstreamProtocolError(UpstreamError):
    """The shard answered something that is not valid HTTP."""


def _httpx(settings: GatewaySettings) -> UpstreamClient:
    from gateway.upstream.httpx_client import HttpxUpstream

    return HttpxUpstream(settings.pool_max_connections, settings.pool_keepalive_s)


UPSTREAM_CLIENTS: Mapping[str, Callable[[GatewaySettings], UpstreamClient]] = {
    "httpx": _httpx,
}


def create_upstream(settings: GatewaySettings) -> UpstreamClient:
    return UPSTREAM_CLIENTS[settings.upstream_client](settings)
