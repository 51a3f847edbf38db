"""What a client without the token can send the gateway (in process, over real shard
processes), and what a token holder's odd input costs: each is refused with a 4xx naming
what is wrong, cheaply, and changes nothing a client after it would see."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from starlette.testclient import TestClient

from shardstack.bench.exposition import Samples
from tests.support import ADMIN, GatewayFactory, ShardProcess, StartShard, assert_problem

SHARDS = 3


@pytest.fixture(scope="module")
def shards(start_shard: StartShard) -> list[ShardProcess]:
    return [start_shard(shard_id, "fixed:1") for shard_id in range(SHARDS)]


@pytest.fixture
def gateway(make_gateway: GatewayFactory, shards: list[ShardProcess]) -> Iterator[TestClient]:
    """Breakers as by default: five failures in a row open one."""
    with make_gateway([shard.url for shard in shards]) as client:
        yield client
        client.delete("/admin/faults", headers=ADMIN)


def _open_breakers(gateway: TestClient) -> float:
    samples = Samples.parse(gateway.get("/metrics").text)
    return samples.total("gateway_circuit_breakers", state="open")


@pytest.mark.parametrize(
    "request_id",
    [
        "é".encode("latin-1") * 65,  # 65 characters here, 130 bytes as UTF-8 to a shard
        "é".encode() * 65,
        b"id with spaces",
        b"tab\there",
        b"x" * 129,
    ],
    ids=["latin-1", "utf-8", "space", "control", "too long"],
)
def test_a_request_id_outside_the_alphabet_is_a_422_before_any_shard_is_called(
    gateway: TestClient, shards: list[ShardProcess], request_id: bytes
) -> None:
    calls = [shard.calls_received() for shard in shards]
    for _ in range(10):  # twice what opens a breaker, had the shards been asked
        answer = gateway.get("/api/aggregate", headers=[(b"x-request-id", request_id)])
        assert_problem(answer, 422, ["x-request-id"])
    assert [shard.calls_received() for shard in shards] == calls
    assert _open_breakers(gateway) == 0
    body = gateway.get("/api/aggregate").json()
    assert body["status"] == "complete"
    visible = gateway.get("/api/aggregate", headers={"x-request-id": "A-z_0.9~!#"})
    assert visible.json()["request_id"] == "A-z_0.9~!#"


@pytest.mark.parametrize(
    ("status", "opens"), [(404, False), (422, False), (429, True), (503, True)]
)
def test_only_a_shard_s_answer_that_blames_the_shard_counts_against_it(
    gateway: TestClient, status: int, opens: bool
) -> None:
    fault = {"kind": "error", "status": status, "shards": [1]}
    assert gateway.post("/admin/faults", json=fault, headers=ADMIN).status_code == 201
    outcomes = [gateway.get("/api/aggregate").json()["shards"][1]["status"] for _ in range(8)]
    # A 4xx other than 408 and 429 blames the request: the shard is called every time.
    # One that blames the shard opens its breaker after five in a row.
    assert ("circuit_open" in outcomes) is opens, outcomes
    assert _open_breakers(gateway) == (1 if opens else 0)
    if not opens:
        assert outcomes == ["error"] * 8


@pytest.mark.parametrize(("status", "throttled"), [(404, False), (503, True)])
def test_only_a_shard_s_answer_that_blames_the_shard_throttles_it(
    make_gateway: GatewayFactory, shards: list[ShardProcess], status: int, throttled: bool
) -> None:
    with make_gateway([shard.url for shard in shards], throttle_k=2, breaker_failures=0) as gw:
        fault = {"kind": "error", "status": status, "shards": [1]}
        assert gw.post("/admin/faults", json=fault, headers=ADMIN).status_code == 201
        outcomes = {gw.get("/api/aggregate").json()["shards"][1]["status"] for _ in range(30)}
        gw.delete("/admin/faults", headers=ADMIN)
    assert outcomes == ({"error", "throttled"} if throttled else {"error"})


def test_unknown_query_parameters_are_refused_cheaply_naming_the_first(
    gateway: TestClient,
) -> None:
    query = "&".join(f"p{i}=1" for i in range(1500))
    answer = gateway.get(f"/api/aggregate?timeout_ms=500&{query}")
    assert_problem(answer, 422, ["p0"])
    assert len(answer.content) < 1024
    assert "known: data, min_ok, shards, timeout_ms" in answer.json()["detail"]
    admin = gateway.get(f"/admin/faults?{query}", headers=ADMIN)
    assert_problem(admin, 422, ["p0"])
    assert_problem(gateway.get(f"/admin/faults?{query}"), 401)  # the token first, as ever


def _nested(depth: int) -> bytes:
    return b'{"kind": "error", "shards": "all", "x": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("depth", [17, 990])
def test_a_body_nested_past_its_bound_is_a_422_naming_the_body(
    gateway: TestClient, shards: list[ShardProcess], depth: int
) -> None:
    answer = gateway.post("/admin/faults", content=_nested(depth), headers=ADMIN)
    assert_problem(answer, 422, ["body"])
    assert "nested deeper than 16 levels" in answer.json()["detail"]
    # And at a shard's own admin port.
    refused = httpx.put(
        f"{shards[0].admin_url}/admin/latency", content=_nested(depth), headers=ADMIN
    )
    assert_problem(refused, 422, ["body"])
    assert gateway.get("/admin/faults", headers=ADMIN).json()["active"] == 0


@pytest.mark.parametrize(
    "body",
    [
        b'{"kind": "error", "status": ' + b"9" * 5000 + b', "shards": "all"}',
        b'{"kind": "latency", "latency": "fixed:' + b"9" * 5000 + b'", "shards": "all"}',
        b'{"kind": "error", "shards": "0-' + b"9" * 5000 + b'"}',
    ],
    ids=["json", "compact", "selector"],
)
def test_a_number_of_thousands_of_digits_is_a_422(gateway: TestClient, body: bytes) -> None:
    started = time.monotonic()
    answer = gateway.post("/admin/faults", content=body, headers=ADMIN)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert time.monotonic() - started < 10  # bounded: no quadratic parse
    assert gateway.get("/admin/faults", headers=ADMIN).json()["active"] == 0


def test_a_fault_an_empirical_file_outside_the_shards_directory_changes_nothing(
    gateway: TestClient,
) -> None:
    fault: dict[str, Any] = {"kind": "latency", "latency": "empirical:/etc/passwd"}
    answer = gateway.post("/admin/faults", json={**fault, "shards": "all"}, headers=ADMIN)
    assert_problem(answer, 422)
    assert "outside the latency directory" in answer.json()["detail"]
    assert gateway.get("/admin/faults", headers=ADMIN).json()["active"] == 0
    shipped = {**fault, "latency": "empirical:two-modes.txt", "shards": "all"}
    assert gateway.post("/admin/faults", json=shipped, headers=ADMIN).status_code == 201


def test_a_problem_body_is_json_of_this_shape(gateway: TestClient) -> None:
    problem = orjson.loads(gateway.get("/api/aggregate?colour=red").content)
    assert set(problem) == {"type", "title", "status", "detail", "errors"}
