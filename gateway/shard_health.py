"""A shard's answer to its health check (`GET /healthz` on its data port), through the
gateway's data client: what `/readyz` and the browser panel both ask."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from gateway.shards import Shard
from gateway.upstream import UpstreamClient, UpstreamError


async def shard_health(upstream: UpstreamClient, shard: Shard, timeout_s: float) -> dict[str, Any]:
    """The shard's health answer; empty if it gave none in `timeout_s` (so falsy when
    the shard is down)."""
    try:
        async with asyncio.timeout(timeout_s):
            response = await upstream.get(shard.health_url)
    except (TimeoutError, UpstreamError):
        return {}
    if response.status != 200:
        return {}
    try:
        answer = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return {"status": "ok"}
    return answer if isinstance(answer, dict) and answer else {"status": "ok"}
