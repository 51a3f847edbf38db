"""The data path: `GET /data` answers after the model's delay; `GET /healthz`."""

from __future__ import annotations

import asyncio

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shard_sim.state import ShardState


async def data(request: Request) -> Response:
    """The shard's records, after a delay drawn from the current latency model."""
    state: ShardState = request.app.state.shard
    delay_s = state.next_delay_s()
    if delay_s > 0:
        await asyncio.sleep(delay_s)
    body = {"shard": state.shard_id, "delay_ms": delay_s * 1000.0, "records": state.records}
    return Response(orjson.dumps(body), media_type="application/json")


async def healthz(request: Request) -> Response:
    state: ShardState = request.app.state.shard
    body = {"status": "ok", "shard": state.shard_id, "pid": state.pid}
    return Response(orjson.dumps(body), media_type="application/json")


ROUTES = [
    Route("/data", data, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
]
