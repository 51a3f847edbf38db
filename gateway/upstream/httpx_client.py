"""The httpx implementation of `UpstreamClient`."""

from __future__ import annotations

import time
from collections.abc import Mapping

import h11
import httpx

from gateway.upstream import (
    CallTiming,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamResetError,
    UpstreamResponse,
)


class HttpxUpstream:
    """One `httpx.AsyncClient` with a bounded pool; HTTP/1.1, no proxies from the environment."""

    def __init__(self, max_connections: int, keepalive_s: float) -> None:
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=keepalive_s,
            ),
            timeout=httpx.Timeout(None),
            trust_env=False,
            follow_redirects=False,
        )

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
        return UpstreamResponse(response.status_code, body)

    async def aclose(self) -> None:
        await self._client.aclose()


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
