"""Circuit breakers, retries and load shedding: the gateway (in process) against real shard
processes with injected faults, and the breaker's state machine on its own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge
from starlette.testclient import TestClient

from gateway.breaker import BreakerState, CircuitBreaker
from shardstack.bench.exposition import Samples
from tests.support import (
    ADMIN,
    GatewayFactory,
    ShardProcess,
    StartShard,
    assert_problem,
)

SHARDS = 4
FLAKY = 2  # the shard the faults go to
OPEN_MS = 400


@pytest.fixture(scope="module")
def shards(start_shard: StartShard) -> list[ShardProcess]:
    return [start_shard(shard_id, "fixed:1") for shard_id in range(SHARDS)]


@pytest.fixture
def gateway(
    make_gateway: GatewayFactory, shards: list[ShardProcess], request: pytest.FixtureRequest
) -> Iterator[TestClient]:
    settings: dict[str, Any] = getattr(request, "param", {})
    urls = [shard.url for shard in shards]
    with make_gateway(
        urls, **{"breaker_failures": 3, "breaker_open_ms": OPEN_MS, **settings}
    ) as client:
        yield client
        client.delete("/admin/faults", headers=ADMIN)


def _inject(client: TestClient, **fault: Any) -> None:
    response = client.post("/admin/faults", json={"shards": [FLAKY], **fault}, headers=ADMIN)
    assert response.status_code == 201, response.text


def _flaky(client: TestClient) -> dict[str, Any]:
    body = client.get("/api/aggregate").json()
    result: dict[str, Any] = body["shards"][FLAKY]
    return result


def _metric(client: TestClient, name: str, **labels: str) -> float:
    samples = Samples.parse(client.get("/metrics").text)
    assert samples.exported(name), f"{name} not exported"
    return samples.total(name, **labels)


def test_a_failing_shard_is_skipped_without_a_call_then_probed_back_in(
    gateway: TestClient, shards: list[ShardProcess]
) -> None:
    _inject(gateway, kind="error", status=500)
    assert [_flaky(gateway)["status"] for _ in range(3)] == ["error"] * 3
    assert _metric(gateway, "gateway_circuit_breakers", shard=str(FLAKY), state="open") == 1

    received = shards[FLAKY].calls_received()
    skipped = [_flaky(gateway) for _ in range(5)]
    assert {result["status"] for result in skipped} == {"circuit_open"}
    assert "3 failures in a row" in skipped[0]["detail"]
    assert shards[FLAKY].calls_received() == received  # no call reached the shard
    assert _metric(gateway, "gateway_semaphore_in_use") == 0

    # Still failing when probed: open again, for another OPEN_MS.
    time.sleep(OPEN_MS / 1000 + 0.1)
    assert _flaky(gateway)["status"] == "error"
    assert _flaky(gateway)["status"] == "circuit_open"

    gateway.delete("/admin/faults", headers=ADMIN)
    time.sleep(OPEN_MS / 1000 + 0.1)
    assert _flaky(gateway)["status"] == "ok"  # the probe
    assert _metric(gateway, "gateway_circuit_breakers", shard=str(FLAKY), state="closed") == 1
    assert [_flaky(gateway)["status"] for _ in range(3)] == ["ok"] * 3
    skipped_total = _metric(
        gateway, "gateway_shard_requests_total", shard=str(FLAKY), outcome="circuit_open"
    )
    assert skipped_total == 6


def test_half_open_lets_one_probe_through_and_skips_the_rest() -> None:
    registry = CollectorRegistry()
    states = Gauge("states", "", ("shard", "state"), registry=registry)
    breaker = CircuitBreaker(failures=2, open_s=0.05, states=states, shard_id=0)
    for _ in range(2):
        assert breaker.allow()
        breaker.record(ok=False)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    time.sleep(0.06)
    assert breaker.allow()  # the probe
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()
    assert not breaker.allow()
    breaker.abandon()  # the probe was cancelled: no verdict, the next call probes
    assert breaker.allow()
    breaker.record(ok=True)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    for state, workers in (("closed", 1), ("open", 0), ("half_open", 0)):
        assert registry.get_sample_value("states", {"shard": "0", "state": state}) == workers


def test_a_success_resets_the_count_of_failures_in_a_row() -> None:
    states = Gauge("states", "", ("shard", "state"), registry=CollectorRegistry())
    breaker = CircuitBreaker(failures=3, open_s=60, states=states, shard_id=0)
    for ok in (False, False, True, False, False):
        assert breaker.allow()
        breaker.record(ok)
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize("gateway", [{"breaker_failures": 0}], indirect=True)
def test_breakers_off_keep_calling_a_failing_shard(gateway: TestClient) -> None:
    _inject(gateway, kind="error", status=500)
    assert [_flaky(gateway)["status"] for _ in range(8)] == ["error"] * 8


@pytest.mark.parametrize("gateway", [{"breaker_failures": 0}], indirect=True)
def test_a_failure_a_second_try_can_fix_is_retried_once(
    gateway: TestClient, shards: list[ShardProcess]
) -> None:
    _inject(gateway, kind="error", status=503, probability=0.5, id="coin")
    received = shards[FLAKY].calls_received()
    results = [_flaky(gateway) for _ in range(30)]
    retried = [result for result in results if result.get("attempts") == 2]
    assert retried, "half the calls fail; some must have been retried"
    assert any(result["status"] == "ok" for result in retried)
    assert all(result.get("attempts", 1) <= 2 for result in results)
    assert shards[FLAKY].calls_received() - received == 30 + len(retried)
    assert _metric(gateway, "gateway_retries_sent_total") == len(retried)


@pytest.mark.parametrize("gateway", [{"breaker_failures": 0}], indirect=True)
def test_an_answer_that_the_shard_failed_is_not_retried(gateway: TestClient) -> None:
    _inject(gateway, kind="error", status=500)
    results = [_flaky(gateway) for _ in range(5)]
    assert all("attempts" not in result for result in results)
    assert _metric(gateway, "gateway_retries_sent_total") == 0


@pytest.mark.parametrize("gateway", [{"breaker_failures": 0, "retry_budget": 0.01}], indirect=True)
def test_retries_stay_within_their_budget(gateway: TestClient) -> None:
    _inject(gateway, kind="down")
    aggregates = 60
    for _ in range(aggregates):
        assert _flaky(gateway)["status"] == "unreachable"
    sent = _metric(gateway, "gateway_retries_sent_total")
    calls = aggregates * SHARDS
    assert 20 <= sent <= 20 + 0.01 * calls  # the burst, then 1 % of calls
    assert _metric(gateway, "gateway_retries_denied_total") == aggregates - sent


@pytest.mark.parametrize(
    "gateway",
    [{"semaphore_size": SHARDS, "max_queued_calls": 0, "permit_wait_ms": 5000}],
    indirect=True,
)
def test_a_request_past_capacity_is_answered_503_at_once_with_retry_after(
    gateway: TestClient,
) -> None:
    _inject(gateway, kind="latency", latency="fixed:500")
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(gateway.get, "/api/aggregate")
        time.sleep(0.2)  # the first holds every permit now
        started = time.perf_counter()
        shed = gateway.get("/api/aggregate")
        shed_ms = (time.perf_counter() - started) * 1000
        assert first.result().status_code == 200
    assert_problem(shed, 503)
    assert shed.headers["retry-after"] == "1"
    assert "GATEWAY_MAX_QUEUED_CALLS" in shed.json()["detail"]
    assert shed_ms < 250  # not after the slow shard
    assert _metric(gateway, "gateway_shed_requests_total", reason="queue_full") == 1
    assert _metric(gateway, "gateway_aggregate_requests_total", status="shed") == 1
    assert _metric(gateway, "gateway_aggregates_in_flight") == 0
    assert _metric(gateway, "gateway_semaphore_in_use") == 0
