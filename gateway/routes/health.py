"""`GET /healthz` (this process is alive) and `GET /readyz` (every shard is reachable, and
in the zone the gateway places it)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from gateway.answers import Health, Readiness, answer
from gateway.shard_health import shard_health
from gateway.shards import zones_of
from gateway.state import Gateway

router = APIRouter()


@router.get("/healthz", responses={200: answer(Health, "this worker is alive")})
async def healthz() -> Response:
    return Response(
        orjson.dumps({"status": "ok", "pid": os.getpid()}), media_type="application/json"
    )


@router.get(
    "/readyz",
    responses={
        200: answer(Readiness, "every shard answered its health check, in its zone"),
        503: answer(Readiness, "some shards are unreachable or in another zone"),
    },
)
async def readyz(gateway: Gateway) -> Response:
    timeout_s = gateway.settings.ready_timeout_ms / 1000.0
    checks = await asyncio.gather(
        *(shard_health(gateway.upstream, shard, timeout_s) for shard in gateway.shards)
    )
    down = [shard.id for shard, check in zip(gateway.shards, checks, strict=True) if not check]
    # A shard that says it is in another zone than the gateway places it in: the two
    # declarations (SHARD_ZONE, GATEWAY_SHARD_ZONES) disagree, so zone faults would miss.
    misplaced = [
        {"shard": shard.id, "gateway": shard.zone, "shard_says": check.get("zone")}
        for shard, check in zip(gateway.shards, checks, strict=True)
        if check and shard.zone is not None and check.get("zone") != shard.zone
    ]
    ready = not down and not misplaced
    body: dict[str, Any] = {
        "status": "ready" if ready else "not_ready",
        "shards": len(gateway.shards),
        "down": down,
    }
    zones = zones_of(gateway.shards)
    if zones is not None:
        body["zones"] = zones
        body["zone_mismatch"] = misplaced
    return Response(
        orjson.dumps(body), status_code=200 if ready else 503, media_type="application/json"
    )
