"""`GET /api/aggregate`: fan out to the selected shards and answer with what came back."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from gateway.admission import shed_response
from gateway.overload import Overloaded
from gateway.request_faults import shard_headers
from gateway.results import AggregateStatus, ShardOutcome, aggregate_status
from gateway.routes.query import known_query
from gateway.shards import select
from gateway.state import Gateway
from shardstack_kernel.admin_token import require_bearer
from shardstack_kernel.request_id import checked_request_id, new_request_id
from shardstack_kernel.validation import InvalidInput

router = APIRouter()


class AggregateQuery(BaseModel):
    """The closed set of query parameters; gateway/openapi.py documents each exactly."""

    model_config = ConfigDict(extra="forbid")

    timeout_ms: int | None = Field(None, ge=1)
    min_ok: int = Field(1, ge=0)
    shards: str | None = Field(None, max_length=4096)
    data: bool = False


@router.get("/api/aggregate", dependencies=[known_query(AggregateQuery)])
async def aggregate(
    query: Annotated[AggregateQuery, Query()],
    gateway: Gateway,
    x_shardstack_fault: Annotated[str | None, Header(min_length=1, max_length=4096)] = None,
    # Checked below (checked_request_id), so the error names what is wrong.
    x_request_id: Annotated[str | None, Header()] = None,
    # Read only with X-Shardstack-Fault, which needs the admin token.
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    started = time.perf_counter()
    settings = gateway.settings
    request_id = new_request_id() if x_request_id is None else checked_request_id(x_request_id)
    echoed = {"x-request-id": request_id}
    timeout_ms = query.timeout_ms or settings.default_timeout_ms
    deadline = asyncio.get_running_loop().time() + timeout_ms / 1000.0
    if timeout_ms > settings.max_timeout_ms:
        raise InvalidInput.field(
            "timeout_ms", f"must be at most {settings.max_timeout_ms} (GATEWAY_MAX_TIMEOUT_MS)"
        )
    selected = select(gateway.shards, query.shards)
    if query.min_ok > len(selected):
        raise InvalidInput.field(
            "min_ok", f"must be at most the number of selected shards ({len(selected)})"
        )

    headers = None
    if x_shardstack_fault is not None:
        if not settings.allow_request_faults:
            raise HTTPException(
                403, "X-Shardstack-Fault is off on this gateway (GATEWAY_ALLOW_REQUEST_FAULTS)"
            )
        # The client's own authority goes to the shards; the gateway never lends its own.
        require_bearer(authorization, gateway.admin_token)
        assert authorization is not None
        headers = shard_headers(x_shardstack_fault, gateway.shards, authorization)

    try:
        results = await gateway.fanout.run(selected, deadline, request_id, headers)
    except Overloaded as shed:
        gateway.admission.shed(shed.reason, started)
        return shed_response(shed, echoed)

    status = aggregate_status(results, query.min_ok)
    gateway.metrics.aggregate(status, time.perf_counter() - started)
    ok = sum(result.status is ShardOutcome.OK for result in results)
    body: dict[str, Any] = {
        "status": status,
        "ok": ok,
        "failed": len(results) - ok,
        "elapsed_ms": round((time.perf_counter() - started) * 1000.0, 3),
        "timeout_ms": timeout_ms,
        "request_id": request_id,
        "shards": [
            result.as_dict(query.data, shard.zone)
            for shard, result in zip(selected, results, strict=True)
        ],
    }
    # A plain Response of orjson bytes: measured faster than FastAPI's response_model
    # serialisation for this payload (benchmarks/response_serialization.py).
    return Response(
        orjson.dumps(body),
        status_code=502 if status is AggregateStatus.FAILED else 200,
        media_type="application/json",
        headers=echoed,
    )
