"""Faults end to end: the gateway (in process) injects them into real shard processes on
loopback, and sees each kind as what it is, in both layouts: a process per shard, and
all four shards packed in one process."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.support import ADMIN, ADMIN_TOKEN, HOST, GatewayFactory, StartShard, assert_problem

SHARDS = 4


@dataclass(frozen=True)
class Shards:
    urls: list[str]
    admin_port_offset: int


@pytest.fixture(scope="module", params=["process per shard", "packed"])
def shards(start_shard: StartShard, request: pytest.FixtureRequest) -> Shards:
    if request.param == "packed":
        packed = start_shard(0, "fixed:1", pack=SHARDS)
        return Shards([f"http://{HOST}:{packed.port + i}" for i in range(SHARDS)], SHARDS)
    return Shards([start_shard(shard_id, "fixed:1").url for shard_id in range(SHARDS)], 1)


def _gateway(make_gateway: GatewayFactory, shards: Shards, **settings: Any) -> TestClient:
    return make_gateway(
        shards.urls,
        shard_admin_port_offset=shards.admin_port_offset,
        shard_timeout_ms=1000,
        default_timeout_ms=1500,
        # Each test sees a fault as it is; breakers would hide a shard failing often.
        breaker_failures=0,
        **settings,
    )


@pytest.fixture(scope="module", params=["httpx", "aiohttp", "pyreqwest"])
def gateway(
    make_gateway: GatewayFactory, shards: Shards, request: pytest.FixtureRequest
) -> Iterator[TestClient]:
    """The gateway with each upstream client: every fault must look the same through both."""
    with _gateway(
        make_gateway, shards, allow_request_faults=True, upstream_client=request.param
    ) as client:
        yield client


@pytest.fixture(autouse=True)
def no_faults_left(gateway: TestClient) -> Iterator[None]:
    yield
    assert gateway.delete("/admin/faults", headers=ADMIN).status_code == 200


def _inject(gateway: TestClient, shards: object, **fault: object) -> dict[str, Any]:
    response = gateway.post("/admin/faults", json={"shards": shards, **fault}, headers=ADMIN)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _by_shard(gateway: TestClient, **params: object) -> dict[int, dict[str, Any]]:
    response = gateway.get("/api/aggregate", params=params)
    return {entry["shard"]: entry for entry in response.json()["shards"]}


def _faulted(gateway: TestClient) -> dict[int, list[str]]:
    listing = gateway.get("/admin/faults", headers=ADMIN).json()
    return {entry["shard"]: [f["kind"] for f in entry["faults"]] for entry in listing["shards"]}


def test_selector_hits_exactly_the_named_shards(gateway: TestClient) -> None:
    injected = _inject(gateway, [1, 3], kind="error", status=503)
    assert [entry["shard"] for entry in injected["shards"]] == [1, 3]
    assert {entry["status"] for entry in injected["shards"]} == {"added"}
    assert _faulted(gateway) == {0: [], 1: ["error"], 2: [], 3: ["error"]}
    results = _by_shard(gateway)
    assert {shard for shard, entry in results.items() if entry["status"] == "error"} == {1, 3}
    assert results[1]["detail"] == "HTTP 503"

    _inject(gateway, "0-1", kind="reset")
    assert _faulted(gateway) == {0: ["reset"], 1: ["error", "reset"], 2: [], 3: ["error"]}


def test_random_selector_picks_k_shards_and_a_seed_repeats_the_pick(gateway: TestClient) -> None:
    first = _inject(gateway, {"random": 2, "seed": 11}, kind="error", id="a")
    again = _inject(gateway, {"random": 2, "seed": 11}, kind="error", id="b")
    picked = [entry["shard"] for entry in first["shards"]]
    assert len(picked) == 2
    assert [entry["shard"] for entry in again["shards"]] == picked
    assert sorted(shard for shard, kinds in _faulted(gateway).items() if kinds) == picked


@pytest.mark.parametrize(
    ("fault", "status", "detail"),
    [
        ({"kind": "reset"}, "reset", None),
        ({"kind": "reset", "after_bytes": 100}, "reset", None),
        ({"kind": "error", "status": 429, "retry_after_s": 1}, "error", "HTTP 429"),
        ({"kind": "malformed", "mode": "invalid_json"}, "error", "malformed body"),
        # The reason is each client's own words.
        (
            {"kind": "malformed", "mode": "truncated"},
            "error",
            "message body|payload is not completed|message length",
        ),
        ({"kind": "malformed", "mode": "garbage"}, "error", "invalid HTTP"),
        ({"kind": "down"}, "unreachable", None),
        ({"kind": "slow_body", "bytes_per_s": 100}, "timeout", "headers arrived, body did not"),
    ],
)
def test_the_gateway_sees_each_fault_kind_as_what_it_is(
    gateway: TestClient, fault: dict[str, object], status: str, detail: str | None
) -> None:
    _inject(gateway, [2], **fault)
    results = _by_shard(gateway)
    assert results[2]["status"] == status
    if detail is not None:
        assert re.search(detail, results[2]["detail"]), results[2]["detail"]
    assert all(results[shard]["status"] == "ok" for shard in (0, 1, 3))


def test_slow_body_is_quick_headers_then_a_slow_body(gateway: TestClient) -> None:
    _inject(gateway, [0], kind="slow_body", bytes_per_s=2500)  # ~1 KiB body: ~0.4 s
    result = _by_shard(gateway)[0]
    assert result["status"] == "ok"
    assert result["headers_ms"] < 150
    assert result["latency_ms"] - result["headers_ms"] > 250


def test_latency_fault_delays_the_shard_and_the_aggregate(gateway: TestClient) -> None:
    _inject(gateway, [3], kind="latency", latency="fixed:250")
    response = gateway.get("/api/aggregate")
    results = {entry["shard"]: entry for entry in response.json()["shards"]}
    assert results[3]["status"] == "ok"
    assert results[3]["latency_ms"] >= 250
    assert response.json()["elapsed_ms"] >= 250


def test_hang_is_cut_at_the_deadline(gateway: TestClient) -> None:
    _inject(gateway, [1], kind="hang")
    started = time.perf_counter()
    response = gateway.get("/api/aggregate", params={"timeout_ms": 600})
    took_s = time.perf_counter() - started
    body = response.json()
    assert body["status"] == "partial"
    results = {entry["shard"]: entry for entry in body["shards"]}
    assert results[1]["status"] == "timeout"
    # The call starts a little after the aggregate's deadline is set, so it may be cut
    # a fraction of a millisecond short of 600 ms from its own start.
    assert 600 - 20 <= results[1]["latency_ms"] < 600 + 300
    assert took_s < 0.6 + 0.5


def test_down_comes_back_when_its_duration_ends(gateway: TestClient) -> None:
    _inject(gateway, [2], kind="down", duration_s=1)
    started = time.monotonic()
    assert _by_shard(gateway)[2]["status"] == "unreachable"
    while _by_shard(gateway)[2]["status"] != "ok":
        assert time.monotonic() - started < 5, "shard 2 did not come back"
        time.sleep(0.05)
    assert time.monotonic() - started >= 0.9
    assert _faulted(gateway)[2] == []


def test_a_fault_removes_itself_after_its_duration(gateway: TestClient) -> None:
    _inject(gateway, [0], kind="error", duration_s=0.5)
    started = time.monotonic()
    assert _by_shard(gateway)[0]["status"] == "error"
    while _faulted(gateway)[0]:
        assert time.monotonic() - started < 3, "the fault outlived its duration"
        time.sleep(0.02)
    assert time.monotonic() - started >= 0.45
    assert _by_shard(gateway)[0]["status"] == "ok"


def test_a_flapping_error_switches_the_shard_on_and_off(
    gateway: TestClient,
) -> None:
    _inject(gateway, [1], kind="error", status=500, period_s=0.6)
    seen = set()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and len(seen) < 2:
        seen.add(_by_shard(gateway, shards="1")[1]["status"])
        time.sleep(0.05)
    assert seen == {"ok", "error"}


def test_remove_one_fault_by_id_from_every_shard(gateway: TestClient) -> None:
    _inject(gateway, "all", kind="error", id="everywhere")
    _inject(gateway, [0], kind="reset", id="stays")
    removed = gateway.delete("/admin/faults/everywhere", headers=ADMIN)
    assert removed.json()["removed_from"] == [0, 1, 2, 3]
    assert _faulted(gateway) == {0: ["reset"], 1: [], 2: [], 3: []}
    assert_problem(gateway.delete("/admin/faults/everywhere", headers=ADMIN), 404)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"kind": "error"}, ["shards"]),
        ({"shards": "all", "kind": "meteor"}, ["kind"]),
        ({"shards": "all", "kind": "error", "probability": 2}, ["probability"]),
        ({"shards": "all", "kind": "error", "duration_s": -5}, ["duration_s"]),
        ({"shards": [9], "kind": "error"}, ["shards"]),
        ({"shards": [], "kind": "error"}, ["shards"]),
        ({"shards": {"random": 0}, "kind": "error"}, ["shards.random"]),
        ({"shards": {"random": 9}, "kind": "error"}, ["shards.random"]),
        ({"shards": {"some": 2}, "kind": "error"}, ["shards"]),
        ({"shards": 3, "kind": "error"}, ["shards"]),
        ([], ["body"]),
    ],
)
def test_invalid_injection_is_refused_and_no_shard_changes(
    gateway: TestClient, body: object, fields: list[str]
) -> None:
    _inject(gateway, [0], kind="reset", id="kept")
    before = _faulted(gateway)
    assert_problem(gateway.post("/admin/faults", json=body, headers=ADMIN), 422, fields)
    assert _faulted(gateway) == before


def test_oversized_or_odd_admin_input_is_refused_and_no_shard_changes(
    gateway: TestClient,
) -> None:
    _inject(gateway, [0], kind="reset", id="kept")
    before = _faulted(gateway)
    huge = b'{"shards": "all", "kind": "error", "body": "' + b"x" * 70_000 + b'"}'
    assert_problem(gateway.post("/admin/faults", content=huge, headers=ADMIN), 413)
    assert_problem(gateway.post("/admin/faults", content=b"{nope", headers=ADMIN), 422, ["body"])
    too_long = {"shards": "all", "kind": "error", "body": "x" * 20_000}
    assert_problem(gateway.post("/admin/faults", json=too_long, headers=ADMIN), 422, ["body"])
    # Ids are checked before they go into the shards' URLs.
    assert_problem(gateway.delete("/admin/faults/bad%20id%3F", headers=ADMIN), 422, ["fault_id"])
    assert_problem(gateway.delete("/admin/faults/a%2F..%2F..", headers=ADMIN), 404)
    response = gateway.get(
        "/admin/faults", params={"shards": "all", "colour": "red"}, headers=ADMIN
    )
    assert_problem(response, 422, ["colour"])
    assert _faulted(gateway) == before


def test_admin_routes_need_the_token(gateway: TestClient) -> None:
    _inject(gateway, [0], kind="reset", id="kept")
    before = _faulted(gateway)
    wrong = {"authorization": "Bearer not-the-token-at-all"}
    for response in [
        gateway.post("/admin/faults", json={"shards": "all", "kind": "down"}, headers=wrong),
        gateway.get("/admin/faults"),
        gateway.delete("/admin/faults", headers=wrong),
        gateway.delete("/admin/faults/kept"),
    ]:
        assert_problem(response, 401)
    assert _faulted(gateway) == before


def test_request_fault_header_acts_on_that_request_only(gateway: TestClient) -> None:
    header = {"x-shardstack-fault": "3 error status=500; 0-1 latency latency=fixed:120", **ADMIN}
    results = _by_shard_with(gateway, header)
    assert results[3]["status"] == "error"
    assert results[0]["latency_ms"] >= 120
    assert results[1]["latency_ms"] >= 120
    # What each shard says it injected (its Server-Timing), not a time a loaded machine moves.
    assert results[0]["injected_ms"] == results[1]["injected_ms"] == pytest.approx(121)
    assert results[2]["injected_ms"] == pytest.approx(1)
    assert {entry["status"] for entry in _by_shard(gateway).values()} == {"ok"}


@pytest.mark.parametrize(
    "authorization", [None, "Bearer not-the-token-at-all", f"Basic {ADMIN_TOKEN}"]
)
def test_request_fault_header_needs_the_admin_token_from_the_client(
    gateway: TestClient, authorization: str | None
) -> None:
    headers = {"x-shardstack-fault": "all error status=500"}
    if authorization is not None:
        headers["authorization"] = authorization
    response = gateway.get("/api/aggregate", headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert {entry["status"] for entry in _by_shard(gateway).values()} == {"ok"}


@pytest.mark.parametrize(
    "value",
    ["3", "3 meteor", "9 error", "all down", "all error duration_s=5", "all error status=9"],
)
def test_invalid_request_fault_header_is_a_422(gateway: TestClient, value: str) -> None:
    response = gateway.get("/api/aggregate", headers={"x-shardstack-fault": value, **ADMIN})
    assert_problem(response, 422, ["x-shardstack-fault"])


def test_request_faults_are_refused_unless_allowed(
    make_gateway: GatewayFactory, shards: Shards
) -> None:
    with _gateway(make_gateway, shards) as strict:
        response = strict.get("/api/aggregate", headers={"x-shardstack-fault": "1 error"})
        assert_problem(response, 403)
        assert "GATEWAY_ALLOW_REQUEST_FAULTS" in response.json()["detail"]


def _by_shard_with(gateway: TestClient, headers: dict[str, str]) -> dict[int, dict[str, Any]]:
    response = gateway.get("/api/aggregate", headers=headers)
    return {entry["shard"]: entry for entry in response.json()["shards"]}
