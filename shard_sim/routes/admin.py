"""Runtime control of one shard: read and replace its latency model."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shard_sim.latency import parse_latency
from shard_sim.state import ShardState
from shardstack.request_body import read_json_body


def _latency_response(state: ShardState) -> Response:
    body = {"shard": state.shard_id, "latency": state.latency, "spec": state.latency.spec()}
    return Response(
        orjson.dumps(body, default=lambda model: model.model_dump()),
        media_type="application/json",
    )


async def get_latency(request: Request) -> Response:
    return _latency_response(request.app.state.shard)


async def put_latency(request: Request) -> Response:
    """Replace the latency model; an invalid one is refused (422) and the old one stays."""
    state: ShardState = request.app.state.shard
    state.latency = parse_latency(await read_json_body(request))
    return _latency_response(state)


ROUTES = [
    Route("/admin/latency", get_latency, methods=["GET"]),
    Route("/admin/latency", put_latency, methods=["PUT"]),
]
