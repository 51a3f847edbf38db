"""The data path: `GET /data` answers after the model's delay, shaped by any active faults;
`GET /healthz`."""

from __future__ import annotations

import asyncio

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from shard_sim.state import ShardState
from shard_sim.wire import AsgiWire
from shardstack.common.admin_token import bearer_matches
from shardstack.common.faults import REQUEST_FAULT_HEADER, Answer, Fault, parse_request_fault
from shardstack.common.problem import problem_response
from shardstack.common.validation import InvalidInput


class DataEndpoint:
    """`GET /data`: the shard's records, after a delay from the latency model, shaped by
    active faults. A raw ASGI endpoint, because faults act on how (and whether) the answer
    is sent."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _data(scope, receive, send)


async def _data(scope: Scope, receive: Receive, send: Send) -> None:
    state: ShardState = scope["app"].state.shard
    state.metrics.requests.inc()
    request = Request(scope)
    try:
        one_off = _request_faults(request, state)
    except InvalidInput as exc:
        await problem_response(422, str(exc), exc.errors)(scope, receive, send)
        return
    except _Unauthorized as exc:
        await problem_response(401, str(exc))(scope, receive, send)
        return

    fired = state.faults.firing()
    delay_s = state.next_delay_s()
    for active in fired:
        delay_s += active.fault.delay_s(active.rng)
    for fault in one_off:
        delay_s += fault.delay_s(state.rng)
    state.metrics.delay.observe(delay_s)
    if delay_s > 0:
        await asyncio.sleep(delay_s)

    body = {"shard": state.shard_id, "delay_ms": delay_s * 1000.0, "records": state.records}
    answer = Answer(200, orjson.dumps(body))
    counter = state.metrics.faults_injected
    for active in fired:
        if active.fault.shape(answer, active.rng):
            active.applied += 1
            counter.labels(active.fault.kind).inc()
    for fault in sorted(one_off, key=lambda fault: fault.order):
        if fault.shape(answer, state.rng):
            counter.labels(fault.kind).inc()
    await answer.deliver(AsgiWire(scope, receive, send))


class _Unauthorized(Exception):
    pass


def _request_faults(request: Request, state: ShardState) -> list[Fault]:
    """Faults carried by this request alone; honoured only with the admin token (the
    gateway adds it when it forwards a request fault)."""
    header = request.headers.get(REQUEST_FAULT_HEADER)
    if header is None:
        return []
    if not bearer_matches(request.headers.get("authorization"), state.admin_token):
        raise _Unauthorized(f"{REQUEST_FAULT_HEADER} needs the admin token")
    faults = []
    for item in header.split(";"):
        fault = parse_request_fault(item.split())
        if fault.probability == 1 or state.rng.random() < fault.probability:
            faults.append(fault)
    return faults


async def healthz(request: Request) -> Response:
    state: ShardState = request.app.state.shard
    body = {"status": "ok", "shard": state.shard_id, "pid": state.pid}
    return Response(orjson.dumps(body), media_type="application/json")


ROUTES = [
    Route("/data", DataEndpoint(), methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
]
