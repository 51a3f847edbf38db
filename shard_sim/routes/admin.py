"""Runtime control of one shard, behind the admin token: its latency model, its capacity
and its faults, and what its data port received."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shard_sim import capacity
from shard_sim.state import ShardState
from shardstack_kernel.admin_token import require_bearer
from shardstack_kernel.faults import parse_fault
from shardstack_kernel.latency import parse_latency
from shardstack_kernel.request_body import read_json_body
from shardstack_kernel.validation import InvalidInput


def _admin_state(request: Request) -> ShardState:
    state: ShardState = request.app.state.shard
    require_bearer(request.headers.get("authorization"), state.admin_token)
    return state


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _latency_response(state: ShardState) -> Response:
    latency = state.latency.model_dump()
    return _json({"shard": state.shard_id, "latency": latency, "spec": state.latency.spec()})


async def get_latency(request: Request) -> Response:
    return _latency_response(_admin_state(request))


async def put_latency(request: Request) -> Response:
    """Replace the latency model; an invalid one is refused (422) and the old one stays."""
    state = _admin_state(request)
    body = await read_json_body(request)
    # In a thread: an `empirical` model reads its file.
    state.latency = await run_in_threadpool(parse_latency, body, state.latency_files)
    return _latency_response(state)


def _capacity_response(state: ShardState) -> Response:
    gate = state.capacity
    limits = gate.limits
    return _json(
        {
            "shard": state.shard_id,
            "capacity": None if limits is None else limits.model_dump(mode="json"),
            "spec": capacity.spec(limits),
            "in_service": gate.in_service,
            "waiting": gate.waiting,
        }
    )


async def get_capacity(request: Request) -> Response:
    return _capacity_response(_admin_state(request))


async def put_capacity(request: Request) -> Response:
    """Set finite capacity; what is in service or waiting stays. Invalid: 422, no change."""
    state = _admin_state(request)
    body = await read_json_body(request)
    limits = capacity.parse_capacity(body)
    if limits is None:
        raise InvalidInput.field("workers", "required (DELETE /admin/capacity unbounds the shard)")
    state.capacity.set_limits(limits)
    return _capacity_response(state)


async def delete_capacity(request: Request) -> Response:
    """Unbounded again: every waiting request starts at once."""
    state = _admin_state(request)
    state.capacity.set_limits(None)
    return _capacity_response(state)


async def list_faults(request: Request) -> Response:
    state = _admin_state(request)
    return _json({"shard": state.shard_id, "faults": state.faults.listing()})


async def add_fault(request: Request) -> Response:
    """Add one fault (201 with it as listed); an invalid one is refused and nothing changes."""
    state = _admin_state(request)
    body = await read_json_body(request)
    # In a thread: an `empirical` latency reads its file.
    fault = await run_in_threadpool(parse_fault, body, "", state.latency_files)
    active = state.faults.add(fault)
    state.faults_changed.set()
    # As added, even if so short that it has already expired.
    listed = active.as_dict(state.faults.clock())
    return _json({"shard": state.shard_id, "fault": listed}, status=201)


async def remove_fault(request: Request) -> Response:
    state = _admin_state(request)
    fault_id = request.path_params["fault_id"]
    if not state.faults.remove(fault_id):
        raise HTTPException(404, f"no active fault {fault_id!r} on shard {state.shard_id}")
    state.faults_changed.set()
    return _json({"shard": state.shard_id, "removed": [fault_id]})


async def clear_faults(request: Request) -> Response:
    state = _admin_state(request)
    removed = state.faults.clear()
    state.faults_changed.set()
    return _json({"shard": state.shard_id, "cleared": removed})


async def get_received(request: Request) -> Response:
    """The data requests since the last reset: a count and the last request ids."""
    state = _admin_state(request)
    return _json({"shard": state.shard_id, **state.received.as_dict()})


async def reset_received(request: Request) -> Response:
    state = _admin_state(request)
    return _json({"shard": state.shard_id, "forgotten": state.received.reset()})


ROUTES = [
    Route("/admin/latency", get_latency, methods=["GET"]),
    Route("/admin/latency", put_latency, methods=["PUT"]),
    Route("/admin/capacity", get_capacity, methods=["GET"]),
    Route("/admin/capacity", put_capacity, methods=["PUT"]),
    Route("/admin/capacity", delete_capacity, methods=["DELETE"]),
    Route("/admin/faults", list_faults, methods=["GET"]),
    Route("/admin/faults", add_fault, methods=["POST"]),
    Route("/admin/faults", clear_faults, methods=["DELETE"]),
    Route("/admin/faults/{fault_id}", remove_fault, methods=["DELETE"]),
    Route("/admin/received", get_received, methods=["GET"]),
    Route("/admin/received", reset_received, methods=["DELETE"]),
]
