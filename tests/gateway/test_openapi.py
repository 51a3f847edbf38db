"""The gateway's OpenAPI document, in process, over real shard processes: it describes
this gateway (its shards, zones and limits), the fault body comes from the registry, and
the answers it promises for conflicts and wrong methods are the ones given.
(tests/e2e/test_openapi.py runs schemathesis against it.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from shardstack_kernel.faults import FAULT_KINDS
from shardstack_kernel.faults.schedule import MIN_DURATION_S
from shardstack_kernel.topology import striped_zones
from tests.support import ADMIN, GatewayFactory, StartShard, assert_problem

SHARDS = 3


@pytest.fixture(scope="module")
def gateway(make_gateway: GatewayFactory, start_shard: StartShard) -> Iterator[TestClient]:
    urls = [start_shard(shard_id, "fixed:1").url for shard_id in range(SHARDS)]
    with make_gateway(
        urls,
        shard_zones=",".join(striped_zones(SHARDS, 2)),
        default_timeout_ms=1000,
        max_timeout_ms=1234,
    ) as client:
        yield client


@pytest.fixture
def document(gateway: TestClient) -> dict[str, Any]:
    response = gateway.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _parameters(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    operation = document["paths"][path][method]
    return {parameter["name"]: parameter["schema"] for parameter in operation["parameters"]}


def test_the_parameters_are_this_gateways(document: dict[str, Any]) -> None:
    aggregate = _parameters(document, "/api/aggregate", "get")
    assert aggregate["timeout_ms"] == {"type": "integer", "minimum": 1, "maximum": 1234}
    assert aggregate["min_ok"]["maximum"] == SHARDS
    selector = re.compile(aggregate["shards"]["pattern"])
    for taken in ("all", "0-2", "2-0", " 1 , zone:z1", "zone:z0,2"):
        assert selector.fullmatch(taken), taken
    for refused in ("3", "zone:z2", "01", "1,", "all,1"):
        assert not selector.fullmatch(refused), refused
    for path, method in (("/admin/faults", "get"), ("/admin/faults/{fault_id}", "delete")):
        assert _parameters(document, path, method)["shards"] == aggregate["shards"]


def test_the_fault_body_is_every_kind_of_the_registry(document: dict[str, Any]) -> None:
    body = document["paths"]["/admin/faults"]["post"]["requestBody"]
    union = body["content"]["application/json"]["schema"]
    assert body["required"] is True
    assert union["discriminator"]["propertyName"] == "kind"
    assert set(union["discriminator"]["mapping"]) == set(FAULT_KINDS)
    schemas = document["components"]["schemas"]
    for kind, cls in FAULT_KINDS.items():
        schema = schemas[cls.__name__]
        assert schema["properties"]["kind"]["const"] == kind
        assert {"kind", "shards"} <= set(schema["required"])
        assert "selection" not in schema["properties"]  # the gateway's to fill in
        assert schema["additionalProperties"] is False


def test_the_rules_a_schema_can_state_are_in_it(document: dict[str, Any]) -> None:
    """`on_s` needs `period_s` (null is absent), a fault lasts at least a millisecond,
    and every operation may be a 431 (the worker's head limit, before the app), a problem
    like every error."""
    schemas = document["components"]["schemas"]
    for cls in FAULT_KINDS.values():
        schema = schemas[cls.__name__]
        number = {"type": "number"}
        assert schema["if"] == {"properties": {"on_s": number}, "required": ["on_s"]}
        assert schema["then"] == {"properties": {"period_s": number}, "required": ["period_s"]}
        [duration, _] = schema["properties"]["duration_s"]["anyOf"]
        assert duration["minimum"] == MIN_DURATION_S
    problem = {"$ref": "#/components/schemas/Problem"}
    for operations in document["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            assert responses["431"]["content"] == {"application/problem+json": {"schema": problem}}
            for response in responses.values():
                for media_type, media in response.get("content", {}).items():
                    is_problem = media["schema"] == problem
                    assert is_problem is (media_type == "application/problem+json")


def test_the_document_says_which_operations_need_the_bearer_token(
    document: dict[str, Any],
) -> None:
    scheme = document["components"]["securitySchemes"]["adminToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, operations in document["paths"].items():
        for operation in operations.values():
            security = operation.get("security")
            if path.startswith("/admin/"):
                assert security == [{"adminToken": []}], path
            elif path == "/api/aggregate":
                # Open, but its per-request fault header needs the token (test_faults.py
                # holds the code to it: without the token that header is a 401).
                assert security == [{}, {"adminToken": []}]
                fault_header = next(
                    p for p in operation["parameters"] if p["name"] == "x-shardstack-fault"
                )
                assert "the admin token" in fault_header["description"]
            else:
                assert security is None, path
            assert ("401" in operation["responses"]) is (security is not None), path


def test_a_wrong_method_is_a_405_allowing_every_method_of_the_path(gateway: TestClient) -> None:
    response = gateway.request("PATCH", "/admin/faults", headers=ADMIN)
    assert_problem(response, 405)
    assert response.headers["allow"] == "DELETE, GET, POST"
    response = gateway.put("/api/aggregate")
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET"


def test_the_same_fault_id_twice_is_a_409_and_leaves_the_first(gateway: TestClient) -> None:
    fault = {"kind": "latency", "latency": "fixed:1", "id": "twice", "shards": "0-1"}
    try:
        assert gateway.post("/admin/faults", json=fault, headers=ADMIN).status_code == 201
        again = gateway.post("/admin/faults", json={**fault, "shards": "all"}, headers=ADMIN)
        assert again.status_code == 409
        assert [entry["status"] for entry in again.json()["shards"]] == [
            "failed",
            "failed",
            "added",
        ]
        assert "already active" in again.json()["shards"][0]["detail"]
    finally:
        gateway.delete("/admin/faults", headers=ADMIN)


@pytest.mark.parametrize(
    ("fault", "field"),
    [
        ({"kind": "error", "shards": None}, "shards"),
        ({"kind": "error", "shards": "all", "k_of_n": 1, "selection": [0]}, "selection"),
        ({"kind": "error", "shards": "all", "status": "503"}, "status"),
        ({"kind": "error", "shards": "all", "probability": "0.5"}, "probability"),
        ({"kind": "error", "shards": "all", "content_type": "text/plain\r\nx: 1"}, "content_type"),
        ({"kind": "latency", "shards": "all", "latency": {"model": "fixed", "ms": 5}}, "latency"),
        ({"kind": "error", "shards": {"random": 1, "seed": 2**64}}, "shards.seed"),
        ({"kind": "error", "shards": "all", "on_s": 1}, "on_s"),
        ({"kind": "error", "shards": "all", "duration_s": 1e-40}, "duration_s"),
    ],
)
def test_what_the_document_refuses_is_refused_and_changes_nothing(
    gateway: TestClient, fault: dict[str, Any], field: str
) -> None:
    response = gateway.post("/admin/faults", json=fault, headers=ADMIN)
    assert_problem(response, 422)
    assert response.json()["errors"][0]["field"].startswith(field), response.text
    listed = gateway.get("/admin/faults", headers=ADMIN).json()
    assert listed["active"] == 0


def test_json_numbers_count_by_value(gateway: TestClient) -> None:
    """6.0 is the integer 6, as JSON Schema has it."""
    fault = {"kind": "error", "status": 500.0, "shards": [1.0, 2]}
    try:
        response = gateway.post("/admin/faults", json=fault, headers=ADMIN)
        assert response.status_code == 201, response.text
        added = response.json()["shards"]
        assert [(entry["shard"], entry["fault"]["status"]) for entry in added] == [
            (1, 500),
            (2, 500),
        ]
    finally:
        gateway.delete("/admin/faults", headers=ADMIN)
