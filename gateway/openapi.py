"""The gateway's OpenAPI document: FastAPI's, generated from the routes and the answer
models (gateway/answers.py), with what only this deployment knows filled in: its shard
ids and zones, its deadline limit, the fault body for its shards. Added for every
operation: the 431 the worker's protocol answers before the app sees a request, and the
problem media type of every problem answer.

What no JSON Schema can state is said in descriptions: `min_ok` is at most the shards
selected, a fault's `on_s` is below its `period_s`, `k_of_n` is at most the shards
selected and not with `correlation`, a latency's numbers are in order, and which text is
a valid scenario.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from gateway.settings import GatewaySettings
from gateway.shards import MAX_SELECTOR_CHARS, Shard, selector_pattern
from shardstack_kernel.faults.schema import fault_schemas
from shardstack_kernel.http_protocol import MAX_HEAD_BYTES
from shardstack_kernel.problem import PROBLEM_MEDIA_TYPE

_SCHEMAS = "#/components/schemas/"
_JSON = "application/json"


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
    schemas: dict[str, Any] = document["components"]["schemas"]
    schemas["ShardId"]["maximum"] = len(shards) - 1
    selector = _selector(shards)

    for operation in (op for methods in paths.values() for op in methods.values()):
        for parameter in operation.get("parameters", ()):
            _plain(parameter)
        responses = operation["responses"]
        responses["431"] = {
            "description": f"the request line and headers are larger than {MAX_HEAD_BYTES} bytes",
            "content": {_JSON: {"schema": {"$ref": _SCHEMAS + "Problem"}}},
        }
        for response in responses.values():
            content = response.get("content", {})
            if content.get(_JSON, {}).get("schema") == {"$ref": _SCHEMAS + "Problem"}:
                content[PROBLEM_MEDIA_TYPE] = content.pop(_JSON)

    aggregate = paths["/api/aggregate"]["get"]
    _narrow(
        aggregate,
        timeout_ms={
            "maximum": settings.max_timeout_ms,
            "description": "deadline for the whole aggregate, in ms; default "
            f"{settings.default_timeout_ms} (GATEWAY_DEFAULT_TIMEOUT_MS), at most "
            f"{settings.max_timeout_ms} (GATEWAY_MAX_TIMEOUT_MS)",
        },
        min_ok={"maximum": len(shards)},
        shards=selector,
    )
    # Open to all; the admin token only with X-Shardstack-Fault.
    aggregate["security"] = [{}, {"adminToken": []}]
    for path, method in (
        ("/admin/faults", "get"),
        ("/admin/faults", "delete"),
        ("/admin/faults/{fault_id}", "delete"),
    ):
        _narrow(paths[path][method], shards=selector)

    fault_union, fault_definitions = fault_schemas(
        _SCHEMAS + "{model}", add={"shards": _body_selector(shards)}, drop=["selection"]
    )
    schemas.update(fault_definitions)
    inject = paths["/admin/faults"]["post"]
    inject["requestBody"] = {
        "required": True,
        "description": "a fault and the shards it goes to",
        "content": {_JSON: {"schema": fault_union}},
    }
    inject["responses"]["201"]["links"] = {
        "RemoveFault": {
            "operationId": paths["/admin/faults/{fault_id}"]["delete"]["operationId"],
            "parameters": {"fault_id": "$response.body#/id", "shards": "all"},
        }
    }

    document["components"]["schemas"] = dict(sorted(schemas.items()))
    return document


def _narrow(operation: dict[str, Any], **schemas: dict[str, Any]) -> None:
    """Each named parameter's schema made this gateway's: `schemas[name]` merged in."""
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    for name, narrower in schemas.items():
        parameter = parameters[name]
        parameter["schema"].update(narrower)
        _plain(parameter)


def _plain(parameter: dict[str, Any]) -> None:
    """A parameter as HTTP has it: never null (a query or header cannot be), its
    description on the parameter, no title."""
    schema = parameter["schema"]
    for choice in schema.pop("anyOf", ()):
        if choice.get("type") != "null":
            schema.update(choice)
    schema.pop("title", None)
    if "description" in schema:
        parameter["description"] = schema.pop("description")


def _selector(shards: Sequence[Shard]) -> dict[str, Any]:
    zones = any(shard.zone for shard in shards)
    return {
        "type": "string",
        "maxLength": MAX_SELECTOR_CHARS,
        "pattern": selector_pattern(shards),
        "description": f"'all' (default), ids and ranges of ids 0-{len(shards) - 1} "
        "('0,3,5-7')" + (", zones ('zone:z1')" if zones else ""),
    }


def _body_selector(shards: Sequence[Shard]) -> dict[str, Any]:
    shard_id = {"$ref": _SCHEMAS + "ShardId"}
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
