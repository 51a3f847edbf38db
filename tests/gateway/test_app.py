"""The gateway app in process, fanning out to real shard processes on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tests.support import HOST, GatewayFactory, StartShard, assert_problem, free_port

SLOW_MS = 3000


@pytest.fixture(scope="module")
def shard_urls(start_shard: StartShard) -> list[str]:
    """Shards 0-2 answer in about 2 ms, shard 3 in 3 s, and nothing listens for shard 4."""
    quick = [start_shard(shard_id, "uniform:1,3", records="5").url for shard_id in range(3)]
    slow = start_shard(3, f"fixed:{SLOW_MS}").url
    return [*quick, slow, f"http://{HOST}:{free_port()}"]


@pytest.fixture(scope="module")
def gateway(make_gateway: GatewayFactory, shard_urls: list[str]) -> Iterator[TestClient]:
    # No breakers: the unreachable and the slow shard would open theirs, and each test
    # would see what the ones before it did.
    with make_gateway(
        shard_urls, shard_timeout_ms=5000, default_timeout_ms=2000, breaker_failures=0
    ) as client:
        yield client


def test_all_selected_shards_ok_is_complete(gateway: TestClient) -> None:
    response = gateway.get("/api/aggregate", params={"shards": "0-2"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "complete"
    assert (body["ok"], body["failed"]) == (3, 0)
    assert [shard["shard"] for shard in body["shards"]] == [0, 1, 2]
    assert all(shard["status"] == "ok" and shard["records"] == 5 for shard in body["shards"])
    assert all(0 < shard["latency_ms"] <= body["elapsed_ms"] for shard in body["shards"])
    assert "data" not in body["shards"][0]


def test_data_flag_includes_each_shards_records(gateway: TestClient) -> None:
    body = gateway.get("/api/aggregate", params={"shards": "1", "data": "true"}).json()
    [shard] = body["shards"]
    assert [record["key"] for record in shard["data"]] == [f"shard-1-{i}" for i in range(5)]


def test_slow_shard_is_cut_at_the_deadline_and_the_rest_is_returned(gateway: TestClient) -> None:
    started = time.perf_counter()
    response = gateway.get("/api/aggregate", params={"shards": "0-3", "timeout_ms": 300})
    took_ms = (time.perf_counter() - started) * 1000
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "partial"
    assert (body["ok"], body["failed"]) == (3, 1)
    slow = body["shards"][3]
    assert slow["status"] == "timeout"
    # Its clock starts after the request's, and event loops may fire timers a tick early.
    assert 300 - 20 <= slow["latency_ms"] < 300 + 150
    assert body["elapsed_ms"] < 300 + 150
    assert took_ms < 300 + 500  # far below the shard's 3 s


def test_unreachable_shard_is_reported_as_such(gateway: TestClient) -> None:
    body = gateway.get("/api/aggregate", params={"shards": "0,4"}).json()
    assert body["status"] == "partial"
    assert body["shards"][1]["status"] == "unreachable"
    assert body["shards"][1]["detail"]


def test_fewer_ok_than_min_ok_is_failed_with_502(gateway: TestClient) -> None:
    response = gateway.get(
        "/api/aggregate", params={"shards": "2-4", "timeout_ms": 200, "min_ok": 2}
    )
    assert response.status_code == 502
    body = response.json()
    assert body["status"] == "failed"
    assert [shard["status"] for shard in body["shards"]] == ["ok", "timeout", "unreachable"]


def test_default_selection_is_every_shard(gateway: TestClient) -> None:
    body = gateway.get("/api/aggregate", params={"timeout_ms": 200}).json()
    assert [shard["shard"] for shard in body["shards"]] == [0, 1, 2, 3, 4]
    assert body["timeout_ms"] == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"timeout_ms": 10_001}, "timeout_ms"),
        ({"timeout_ms": 0}, "timeout_ms"),
        ({"timeout_ms": "soon"}, "timeout_ms"),
        ({"min_ok": -1}, "min_ok"),
        ({"min_ok": 6}, "min_ok"),
        ({"shards": "0-2", "min_ok": 4}, "min_ok"),
        ({"shards": "7"}, "shards"),
        ({"shards": "one"}, "shards"),
        ({"data": "maybe"}, "data"),
        ({"verbose": "1"}, "verbose"),
    ],
)
def test_bad_query_is_422_problem_naming_the_field(
    gateway: TestClient, params: dict[str, object], field: str
) -> None:
    assert_problem(gateway.get("/api/aggregate", params=params), 422, [field])


def test_healthz_is_alive_and_readyz_names_unreachable_shards(gateway: TestClient) -> None:
    assert gateway.get("/healthz").json()["status"] == "ok"
    ready = gateway.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"status": "not_ready", "shards": 5, "down": [4]}


def test_readyz_is_ready_when_every_shard_answers(
    make_gateway: GatewayFactory, shard_urls: list[str]
) -> None:
    with make_gateway(shard_urls[:4]) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "shards": 4, "down": []}
