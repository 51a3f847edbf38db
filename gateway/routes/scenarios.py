"""`POST /admin/scenarios/plan`: a scenario file's timeline, planned for this gateway's
shards (ids, zones) and changing nothing; the browser panel plays it step by step."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway import scenarios
from gateway.answers import ScenarioPlan, ScenarioText, answer, problem
from gateway.routes.faults import ADMIN, TOO_LARGE, UNAUTHORISED
from gateway.shards import zones_of
from gateway.state import Gateway
from shardstack_kernel.request_body import read_json_body
from shardstack_kernel.validation import InvalidInput

router = APIRouter(prefix="/admin/scenarios", dependencies=ADMIN, responses=UNAUTHORISED)


@router.post(
    "/plan",
    # Read by hand (its size limit first); which text is a valid scenario no JSON Schema
    # can say, so a body of the right shape may still be a 422 naming what is wrong.
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "a scenario file (scenarios/*.yaml), as text; whether the text "
            "is a valid scenario for these shards only the gateway can tell (422)",
            "content": {"application/json": {"schema": ScenarioText.model_json_schema()}},
        }
    },
    responses={
        200: answer(ScenarioPlan, "each step's moment, shards and fault; nothing injected"),
        413: TOO_LARGE,
        422: problem("the file is not a valid scenario, or not for these shards"),
    },
)
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
