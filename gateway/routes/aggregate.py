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
from gateway.answers import (
    REQUEST_ID_HEADER,
    RETRY_AFTER_HEADER,
    Aggregate,
    answer,
    problem,
)
from gateway.overload import Overloaded
from gateway.request_faults import MAX_FAULT_HEADER_CHARS, shard_headers
from gateway.results import AggregateStatus, ShardOutcome, aggregate_status
from gateway.routes.query import known_query
from gateway.shards import MAX_SELECTOR_CHARS, select
from gateway.state import Gateway
from shardstack_kernel.admin_token import require_bearer
from shardstack_kernel.request_id import (
    MAX_REQUEST_ID_CHARS,
    REQUEST_ID_PATTERN,
    checked_request_id,
    new_request_id,
)
from shardstack_kernel.validation import InvalidInput

router = APIRouter()


class AggregateQuery(BaseModel):
    """The closed set of query parameters (gateway/openapi.py gives this gateway's bounds)."""

    model_config = ConfigDict(extra="forbid")

    timeout_ms: int | None = Field(None, ge=1)
    min_ok: int = Field(
        1,
        ge=0,
        description="fewer shards answering ok than this is a 502; at most the number of "
        "shards `shards` selects",
    )
    shards: str | None = Field(None, max_length=MAX_SELECTOR_CHARS)
    data: bool = Field(False, description="include each shard's records in the answer")


_FAULT_HEADER_DESCRIPTION = (
    "faults for this request only, 'SELECTOR KIND [key=value ...][; ...]', honoured with "
    "GATEWAY_ALLOW_REQUEST_FAULTS and the admin token"
)
_REQUEST_ID_DESCRIPTION = (
    "this aggregate's id, forwarded to every shard call (which keys its random decisions "
    "on it); generated when absent"
)


@router.get(
    "/api/aggregate",
    dependencies=[known_query(AggregateQuery)],
    responses={
        200: answer(Aggregate, "status `complete` or `partial`", headers=REQUEST_ID_HEADER),
        401: problem("X-Shardstack-Fault sent without the admin token"),
        403: problem("X-Shardstack-Fault sent but not honoured by this gateway"),
        422: problem("a parameter or header is invalid; `errors` names each"),
        502: answer(
            Aggregate,
            "status `failed`: fewer than `min_ok` shards answered ok",
            headers=REQUEST_ID_HEADER,
        ),
        503: problem(
            "shed: the gateway is past its capacity, or this worker past its connections",
            headers={**RETRY_AFTER_HEADER, **REQUEST_ID_HEADER},
        ),
    },
)
async def aggregate(
    query: Annotated[AggregateQuery, Query()],
    gateway: Gateway,
    x_shardstack_fault: Annotated[
        str | None,
        Header(
            min_length=1, max_length=MAX_FAULT_HEADER_CHARS, description=_FAULT_HEADER_DESCRIPTION
        ),
    ] = None,
    # Checked below (checked_request_id), so the error names what is wrong; the document
    # still states the rule.
    x_request_id: Annotated[
        str | None,
        Header(
            description=_REQUEST_ID_DESCRIPTION,
            json_schema_extra={
                "minLength": 1,
                "maxLength": MAX_REQUEST_ID_CHARS,
                "pattern": REQUEST_ID_PATTERN,
            },
        ),
    ] = None,
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
