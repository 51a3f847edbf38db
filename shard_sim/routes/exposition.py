"""`GET /metrics` and `GET /healthz` on the admin port, open to scrapers and probes (no
token); the admin port stays up while a `down` fault holds the data port closed."""

from __future__ import annotations

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shard_sim.state import ShardState


async def metrics(request: Request) -> Response:
    state: ShardState = request.app.state.shard
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def healthz(request: Request) -> Response:
    state: ShardState = request.app.state.shard
    body = {"status": "ok", "shard": state.shard_id, "pid": state.pid}
    return Response(orjson.dumps(body), media_type="application/json")


ROUTES = [
    Route("/metrics", metrics, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
]
