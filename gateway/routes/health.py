"""`GET /healthz` (this process is alive) and `GET /readyz` (every shard is reachable)."""

from __future__ import annotations

import asyncio
import os

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from gateway.shards import Shard
from gateway.state import Gateway
from gateway.upstream import UpstreamClient, UpstreamError

router = APIRouter()


@router.get("/healthz")
async def healthz() -> Response:
    return Response(
        orjson.dumps({"status": "ok", "pid": os.getpid()}), media_type="application/json"
    )


@router.get("/readyz", responses={503: {"description": "some shards are unreachable"}})
async def readyz(gateway: Gateway) -> Response:
    timeout_s = gateway.settings.ready_timeout_ms / 1000.0
    healthy = await asyncio.gather(
        *(_healthy(gateway.upstream, shard, timeout_s) for shard in gateway.shards)
    )
    down = [shard.id for shard, ok in zip(gateway.shards, healthy, strict=True) if not ok]
    body = {"status": "not_ready" if down else "ready", "shards": len(gateway.shards), "down": down}
    return Response(
        orjson.dumps(body), status_code=503 if down else 200, media_type="application/json"
    )


async def _healthy(upstream: UpstreamClient, shard: Shard, timeout_s: float) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            response = await upstream.get(shard.health_url)
    except (TimeoutError, UpstreamError):
        return False
    return response.status == 200
