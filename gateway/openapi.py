"""The gateway's OpenAPI document, exact for the gateway that serves it: its shard count,
zones and deadline limit in the parameters, the fault body from the fault registry, and
every answer a route or the worker's protocol gives, with its shape.

FastAPI's own document gives the operations and their plain parameters; this module
states what it cannot know. What no JSON Schema can state is said in descriptions: a
range in `shards` runs forwards, `min_ok` is at most the shards selected, a fault's
`on_s` is below its `period_s` (and needs it), `k_of_n` is at most the shards selected
and not with `correlation`, and a latency's numbers are in order.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.results import AggregateStatus, ShardOutcome
from gateway.settings import GatewaySettings
from gateway.shards import Shard, selector_pattern
from shardstack_kernel.faults import FAULT_ID_PATTERN
from shardstack_kernel.faults.schema import fault_schemas
from shardstack_kernel.http_protocol import MAX_HEAD_BYTES
from shardstack_kernel.problem import PROBLEM_MEDIA_TYPE
from shardstack_kernel.request_body import DEFAULT_BODY_LIMIT
from shardstack_kernel.request_id import MAX_REQUEST_ID_CHARS, REQUEST_ID_PATTERN

_SCHEMAS = "#/components/schemas/"
_SECURITY: list[dict[str, list[str]]] = [{"adminToken": []}]
MAX_SELECTOR_CHARS = 4096


def install(app: FastAPI, settings: GatewaySettings, shards: Sequence[Shard]) -> None:
    """Serve the exact document at /openapi.json, built on first use."""
    document: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not document:
            document.update(build(app, settings, shards))
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def build(app: FastAPI, settings: GatewaySettings, shards: Sequence[Shard]) -> dict[str, Any]:
    document = get_openapi(title=app.title, version=app.version, routes=app.routes)
    paths: dict[str, Any] = document["paths"]
    schemas: dict[str, Any] = {}
    selector = _selector(shards)
    fault_union, fault_definitions = fault_schemas(
        _SCHEMAS + "{model}", add={"shards": _body_selector(shards)}, drop=["selection"]
    )
    schemas.update(fault_definitions)
    schemas.update(_answer_schemas(shards))

    aggregate = paths["/api/aggregate"]["get"]
    _set_parameters(
        aggregate,
        {
            "timeout_ms": {
                "type": "integer",
                "minimum": 1,
                "maximum": settings.max_timeout_ms,
                "description": "deadline for the whole aggregate, in ms; default "
                f"{settings.default_timeout_ms} (GATEWAY_DEFAULT_TIMEOUT_MS), at most "
                f"{settings.max_timeout_ms} (GATEWAY_MAX_TIMEOUT_MS)",
            },
            "min_ok": {
                "type": "integer",
                "minimum": 0,
                "maximum": len(shards),
                "default": 1,
                "description": "fewer shards answering ok than this is a 502; at most the "
                "number of shards `shards` selects",
            },
            "shards": selector,
            "data": {
                "type": "boolean",
                "default": False,
                "description": "include each shard's records in the answer",
            },
            "x-shardstack-fault": {
                "type": "string",
                "minLength": 1,
                "maxLength": 4096,
                "description": "faults for this request only, 'SELECTOR KIND [key=value ...]"
                "[; ...]', honoured with GATEWAY_ALLOW_REQUEST_FAULTS and the admin token",
            },
            "x-request-id": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_REQUEST_ID_CHARS,
                "pattern": REQUEST_ID_PATTERN,
                "description": "this aggregate's id, forwarded to every shard call (which "
                "keys its random decisions on it); generated when absent",
            },
        },
    )
    request_id = {
        "X-Request-Id": {
            "description": "the aggregate's id: the one sent, or a new one",
            "required": True,
            "schema": {"type": "string"},
        }
    }
    aggregate["responses"] = {
        "200": _json("status `complete` or `partial`", "Aggregate", request_id),
        "401": _problem("X-Shardstack-Fault sent without the admin token"),
        "403": _problem("X-Shardstack-Fault sent but not honoured by this gateway"),
        "422": _problem("a parameter or header is invalid; `errors` names each"),
        "431": _head_too_large(),
        "502": _json("status `failed`: fewer than `min_ok` shards answered ok", "Aggregate"),
        "503": _problem(
            "shed: the gateway is past its capacity, or this worker past its connections",
            {
                "Retry-After": {
                    "description": "seconds to wait before trying again",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0},
                },
                **request_id,
            },
        ),
    }
    aggregate["responses"]["502"]["headers"] = request_id
    # Open to all; the admin token only with X-Shardstack-Fault.
    aggregate["security"] = [{}, *_SECURITY]

    paths["/healthz"]["get"]["responses"] = {
        "200": _json("this worker is alive", "Health"),
        "431": _head_too_large(),
    }
    paths["/readyz"]["get"]["responses"] = {
        "200": _json("every shard answered its health check, in its zone", "Readiness"),
        "431": _head_too_large(),
        "503": _json("some shards are unreachable or in another zone", "Readiness"),
    }
    paths["/metrics"] = {"get": _metrics_operation()}

    faults = paths["/admin/faults"]
    faults["post"]["requestBody"] = {
        "required": True,
        "description": "a fault and the shards it goes to",
        "content": {"application/json": {"schema": fault_union}},
    }
    faults["post"]["responses"] = _admin_responses(
        {
            "201": _json("every selected shard added the fault", "FaultAdded"),
            "409": _json(
                "some shards already hold a fault of this id, or as many faults as they "
                "may; the others added it; see each shard's entry",
                "FaultAdded",
            ),
            "413": _problem(f"the body is larger than {DEFAULT_BODY_LIMIT} bytes"),
            "422": _problem("the fault or its shards are invalid; no shard changed"),
            "502": _json("some shards did not add it; see each shard's entry", "FaultAdded"),
        }
    )
    faults["post"]["responses"]["201"]["links"] = {
        "RemoveFault": {
            "operationId": paths["/admin/faults/{fault_id}"]["delete"]["operationId"],
            "parameters": {"fault_id": "$response.body#/id", "shards": "all"},
        }
    }
    for method, answer, what in (
        ("get", "FaultListing", "the active faults, shard by shard"),
        ("delete", "FaultsCleared", "every fault removed from the selected shards"),
    ):
        _set_parameters(faults[method], {"shards": selector})
        faults[method]["responses"] = _admin_responses(
            {
                "200": _json(what, answer),
                "422": _problem("the selector is invalid"),
                "502": _json("some shards did not answer; see each shard's entry", answer),
            }
        )
    remove = paths["/admin/faults/{fault_id}"]["delete"]
    _set_parameters(
        remove,
        {
            "fault_id": {"type": "string", "pattern": FAULT_ID_PATTERN},
            "shards": selector,
        },
    )
    remove["responses"] = _admin_responses(
        {
            "200": _json("removed from every selected shard that had it", "FaultRemoved"),
            "404": _problem("no selected shard has a fault of this id"),
            "422": _problem("the id or the selector is invalid"),
            "502": _json("some shards failed to remove it; see `failed`", "FaultRemoved"),
        }
    )
    scenario_plan = paths["/admin/scenarios/plan"]["post"]
    scenario_plan["requestBody"] = {
        "required": True,
        "description": "a scenario file (scenarios/*.yaml), as text",
        "content": {
            "application/json": {
                "schema": _object(
                    {"text": {"type": "string", "description": "the file's YAML"}}, ["text"]
                )
            }
        },
    }
    scenario_plan["responses"] = _admin_responses(
        {
            "200": _json("each step's moment, shards and fault; nothing injected", "ScenarioPlan"),
            "413": _problem(f"the body is larger than {DEFAULT_BODY_LIMIT} bytes"),
            "422": _problem("the file is not a valid scenario, or not for these shards"),
        }
    )
    for operation in (faults["post"], faults["get"], faults["delete"], remove, scenario_plan):
        operation["security"] = _SECURITY

    document["components"] = {
        "schemas": dict(sorted({**schemas, "Problem": _PROBLEM}.items())),
        "securitySchemes": {
            "adminToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "the admin token (SHARDSTACK_ADMIN_TOKEN), shared with the shards",
            }
        },
    }
    return document


def _set_parameters(operation: dict[str, Any], schemas: dict[str, dict[str, Any]]) -> None:
    """Each named parameter's schema replaced by the exact one (its description moved up
    to the parameter); every parameter the operation has must be named."""
    parameters = operation.get("parameters", [])
    named = {parameter["name"] for parameter in parameters}
    assert named == set(schemas), f"{operation['operationId']}: {named} != {set(schemas)}"
    for parameter in parameters:
        schema = copy.deepcopy(schemas[parameter["name"]])
        parameter["description"] = schema.pop("description", parameter.get("description"))
        parameter["schema"] = schema


def _selector(shards: Sequence[Shard]) -> dict[str, Any]:
    return {
        "type": "string",
        "maxLength": MAX_SELECTOR_CHARS,
        "pattern": selector_pattern(shards),
        "description": f"'all' (default), ids and ranges of ids 0-{len(shards) - 1} "
        "('0,3,5-7'; a range runs forwards)"
        + (", zones ('zone:z1')" if any(shard.zone for shard in shards) else ""),
    }


def _body_selector(shards: Sequence[Shard]) -> dict[str, Any]:
    shard_id = {"type": "integer", "minimum": 0, "maximum": len(shards) - 1}
    return {
        "description": "the shards to inject on: a selector string, a list of ids, or "
        "k shards at random (with `seed`, the same k each time)",
        "oneOf": [
            {k: v for k, v in _selector(shards).items() if k != "description"},
            {"type": "array", "items": shard_id, "minItems": 1},
            {
                "type": "object",
                "properties": {
                    "random": {"type": "integer", "minimum": 1, "maximum": len(shards)},
                    "seed": {
                        "anyOf": [
                            {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
                            {"type": "null"},
                        ]
                    },
                },
                "required": ["random"],
                "additionalProperties": False,
            },
        ],
    }


_PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string", "const": "about:blank"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "each invalid field and why",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
                "required": ["field", "reason"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
    "additionalProperties": False,
}


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _SCHEMAS + "Problem"}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _head_too_large() -> dict[str, Any]:
    return _problem(f"the request line and headers are larger than {MAX_HEAD_BYTES} bytes")


def _json(description: str, schema: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _SCHEMAS + schema}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _admin_responses(responses: dict[str, Any]) -> dict[str, Any]:
    return {
        "401": _problem("missing or wrong admin token"),
        "431": _head_too_large(),
        **responses,
    }


def _metrics_operation() -> dict[str, Any]:
    return {
        "summary": "Metrics",
        "description": "every worker's metrics in the Prometheus text format, whichever "
        "worker answers",
        "operationId": "metrics_metrics_get",
        "responses": {
            "200": {
                "description": "Prometheus text exposition format 0.0.4",
                "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
            },
            "431": _head_too_large(),
        },
    }


def _object(
    properties: dict[str, Any], required: Sequence[str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
        "additionalProperties": False,
        **extra,
    }


def _answer_schemas(shards: Sequence[Shard]) -> dict[str, Any]:
    shard_id = {"type": "integer", "minimum": 0, "maximum": len(shards) - 1}
    ms = {"type": "number", "minimum": 0}
    zone = {"type": "string"}
    admin_failure = _object(
        {"shard": shard_id, "status": {"const": "failed"}, "detail": {"type": "string"}}
    )

    def admin_entries(status: str, key: str | None, value: dict[str, Any]) -> dict[str, Any]:
        ok: dict[str, Any] = {"shard": shard_id, "status": {"const": status}}
        if key is not None:
            ok[key] = value
        return {"type": "array", "items": {"oneOf": [_object(ok), admin_failure]}}

    active_fault: dict[str, Any] = {
        "type": "object",
        "description": "a fault as the shard holds it: its kind's parameters and its state",
        "properties": {
            "id": {"type": "string", "pattern": FAULT_ID_PATTERN},
            "kind": {"type": "string"},
            "probability": {"type": "number", "minimum": 0, "maximum": 1},
            "duration_s": {"type": ["number", "null"]},
            "remaining_s": {"type": ["number", "null"], "minimum": 0},
            "on": {"type": "boolean"},
            "applied": {"type": "integer", "minimum": 0},
        },
        "required": ["id", "kind", "probability", "duration_s", "remaining_s", "on", "applied"],
    }
    entry = {
        "shard": shard_id,
        "zone": zone,
        "status": {"type": "string", "enum": [outcome.value for outcome in ShardOutcome]},
        "latency_ms": ms,
        "headers_ms": ms,
        "served_ms": ms,
        "injected_ms": ms,
        "records": {"type": "integer", "minimum": 0},
        "detail": {"type": "string"},
        "attempts": {"type": "integer", "minimum": 2},
        "data": {"description": "the shard's records, with ?data=true"},
    }
    answered = [status.value for status in AggregateStatus if status is not AggregateStatus.SHED]
    return {
        "Aggregate": _object(
            {
                "status": {"type": "string", "enum": answered},
                "ok": {"type": "integer", "minimum": 0},
                "failed": {"type": "integer", "minimum": 0},
                "elapsed_ms": ms,
                "timeout_ms": {"type": "integer", "minimum": 1},
                "request_id": {"type": "string"},
                "shards": {
                    "type": "array",
                    "items": _object(entry, ["shard", "status", "latency_ms"]),
                },
            }
        ),
        "Health": _object({"status": {"const": "ok"}, "pid": {"type": "integer"}}),
        "Readiness": _object(
            {
                "status": {"type": "string", "enum": ["ready", "not_ready"]},
                "shards": {"type": "integer", "minimum": 0},
                "down": {"type": "array", "items": shard_id},
                "zones": {"type": "array", "items": {"type": ["string", "null"]}},
                "zone_mismatch": {
                    "type": "array",
                    "items": _object(
                        {
                            "shard": shard_id,
                            "gateway": zone,
                            "shard_says": {"type": ["string", "null"]},
                        }
                    ),
                },
            },
            ["status", "shards", "down"],
        ),
        "FaultAdded": _object(
            {
                "id": {"type": "string", "pattern": FAULT_ID_PATTERN},
                "kind": {"type": "string"},
                "shards": admin_entries("added", "fault", active_fault),
            }
        ),
        "FaultListing": _object(
            {
                "active": {"type": "integer", "minimum": 0},
                "shards": admin_entries("ok", "faults", {"type": "array", "items": active_fault}),
            }
        ),
        "FaultsCleared": _object(
            {
                "cleared": {"type": "integer", "minimum": 0},
                "shards": admin_entries("cleared", None, {}),
            }
        ),
        "FaultRemoved": _object(
            {
                "id": {"type": "string", "pattern": FAULT_ID_PATTERN},
                "removed_from": {"type": "array", "items": shard_id},
                "failed": {"type": "array", "items": admin_failure},
            }
        ),
        "ScenarioPlan": _object(
            {
                "name": {"type": "string"},
                "seed": {"type": "integer"},
                "end_s": {"type": "number", "minimum": 0},
                "steps": {
                    "type": "array",
                    "items": _object(
                        {
                            "number": {"type": "integer", "minimum": 1},
                            "at_s": {"type": "number", "minimum": 0},
                            "shards": {"type": "array", "items": shard_id},
                            "fault": {"type": "object"},
                            "description": {"type": "string"},
                        }
                    ),
                },
            }
        ),
    }
