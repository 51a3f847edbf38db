"""`GET /metrics`: the shard's Prometheus metrics, open to scrapers (no token)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shard_sim.state import ShardState


async def metrics(request: Request) -> Response:
    state: ShardState = request.app.state.shard
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


ROUTES = [Route("/metrics", metrics, methods=["GET"])]
