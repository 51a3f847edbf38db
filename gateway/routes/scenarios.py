"""`POST /admin/scenarios/plan`: a scenario file's timeline, planned for this gateway's
shards (ids, zones) and changing nothing; the browser panel plays it step by step."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from gateway import scenarios
from gateway.routes.faults import require_admin
from gateway.shards import zones_of
from gateway.state import Gateway
from shardstack_kernel.request_body import read_json_body
from shardstack_kernel.validation import InvalidInput

router = APIRouter(prefix="/admin/scenarios", dependencies=[Depends(require_admin)])


@router.post("/plan")
async def plan(request: Request, gateway: Gateway) -> Response:
    """Body: `{"text": "<the scenario file, YAML>"}`."""
    body = await read_json_body(request)
    if not isinstance(body, dict) or set(body) != {"text"} or not isinstance(body["text"], str):
        raise InvalidInput.field("body", 'must be {"text": "<the scenario file, YAML>"}')
    loaded = scenarios.parse(body["text"], "text")
    steps = scenarios.plan(loaded, len(gateway.shards), zones_of(gateway.shards))
    answer: dict[str, Any] = {
        "name": loaded.name,
        "seed": loaded.seed,
        "end_s": scenarios.end_s(steps),
        "steps": [
            {
                "number": step.number,
                "at_s": step.at_s,
                "shards": step.shards,
                "fault": step.fault,
                "description": step.describe(),
            }
            for step in steps
        ],
    }
    return Response(orjson.dumps(answer), media_type="application/json")
