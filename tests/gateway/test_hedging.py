"""Hedged shard calls: the pieces on their own, then the gateway (in process) against real
shard processes where one shard is sometimes slow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gateway.budget import CallBudget
from gateway.hedging import LatencyTracker
from shardstack.bench.exposition import Samples
from tests.support import ADMIN, GatewayFactory, StartShard, wait_until

SHARDS = 4
SLOW_MS = 250
# Rarer than 1 in 20, so each shard's p95 stays fast and a slow call gets hedged.
SLOW_PROBABILITY = 0.03
WARM_AGGREGATES = 70  # past the tracker's 50 samples and its refresh every 32
MEASURED_AGGREGATES = 100


def test_the_threshold_is_the_quantile_of_recent_answers_once_there_are_enough() -> None:
    tracker = LatencyTracker(0.95, window=100, refresh_every=10, min_samples=50)
    for ms in range(1, 41):
        tracker.observe(ms / 1000)
    assert tracker.threshold_s is None
    for ms in range(41, 101):
        tracker.observe(ms / 1000)
    assert tracker.threshold_s == pytest.approx(0.096)
    for _ in range(100):  # the window forgets the old answers
        tracker.observe(0.002)
    assert tracker.threshold_s == pytest.approx(0.002)


def test_the_budget_allows_at_most_its_ratio_of_calls_plus_the_burst() -> None:
    budget = CallBudget(0.1, burst=5)
    spent = 0
    for _ in range(1000):
        budget.earn()
        spent += budget.try_spend()
    assert spent == 5 + 100 - 1  # the burst, then one per ten calls (the last not yet earned)
    assert not budget.try_spend()


@pytest.fixture(scope="module")
def shard_urls(start_shard: StartShard) -> list[str]:
    return [start_shard(shard_id, "fixed:1").url for shard_id in range(SHARDS)]


def _slow_calls(client: TestClient) -> int:
    """Shard calls slower than the injected delay, over aggregates where every shard is
    sometimes slow (the fault's id fixes its random draws, so a plain gateway sees the
    same slow calls every run)."""
    for _ in range(WARM_AGGREGATES):
        assert client.get("/api/aggregate").status_code == 200
    fault = {"shards": "all", "kind": "latency", "latency": f"fixed:{SLOW_MS}",
             "probability": SLOW_PROBABILITY, "id": "hedging-test"}  # fmt: skip
    assert client.post("/admin/faults", json=fault, headers=ADMIN).status_code == 201
    slow = 0
    try:
        # The same request ids in every run: the shards make the same decisions for them
        # (which first calls are slow), so runs with and without hedging compare call by call.
        for index in range(MEASURED_AGGREGATES):
            answer = client.get("/api/aggregate", headers={"x-request-id": f"hedging-{index}"})
            body = answer.json()
            assert body["status"] == "complete", body
            slow += sum(shard["latency_ms"] >= SLOW_MS for shard in body["shards"])
    finally:
        assert client.delete("/admin/faults", headers=ADMIN).status_code == 200
    return slow


def _metrics(client: TestClient) -> Samples:
    return Samples.parse(client.get("/metrics").text)


@pytest.fixture(scope="module")
def hedged(make_gateway: GatewayFactory, shard_urls: list[str]) -> Iterator[tuple[int, Samples]]:
    with make_gateway(shard_urls, shard_timeout_ms=2000, hedge=True) as client:
        slow = _slow_calls(client)
        # Hedges' losers run on to their end after the answer, each with its permit.
        wait_until(
            lambda: _metrics(client).get("gateway_semaphore_in_use") == 0, 5, "losers to finish"
        )
        yield slow, _metrics(client)


def test_hedging_answers_for_a_sometimes_slow_shard_without_waiting_for_it(
    make_gateway: GatewayFactory, shard_urls: list[str], hedged: tuple[int, Samples]
) -> None:
    with make_gateway(shard_urls, shard_timeout_ms=2000) as client:
        plain_slow = _slow_calls(client)
    hedged_slow, metrics = hedged
    assert plain_slow >= 5  # about 3 % of 400 calls
    # Hedged, a slow call is answered by its backup, which is slow only 3 % of the time.
    assert hedged_slow <= plain_slow / 3, (plain_slow, hedged_slow)
    assert metrics.get("gateway_hedges_won_total") >= plain_slow / 2


def test_hedges_are_counted_capped_and_give_their_permits_back(
    hedged: tuple[int, Samples],
) -> None:
    _, metrics = hedged
    calls = (WARM_AGGREGATES + MEASURED_AGGREGATES) * SHARDS
    sent, won = metrics.get("gateway_hedges_sent_total"), metrics.get("gateway_hedges_won_total")
    assert 0 < won <= sent <= 0.1 * calls + 20
    # Each hedge's loser ran to its end (well within the 2 s shard timeout): none was cut,
    # so no connection was closed for it.
    losers = {
        fate: metrics.get("gateway_hedge_losers_total", fate=fate)
        for fate in ("ended", "finished", "cut")
    }
    assert losers["cut"] == 0
    assert losers["finished"] >= won  # a slow first call, answered for by its hedge
    assert sum(losers.values()) == sent
    assert metrics.get("gateway_semaphore_in_use") == 0
    assert metrics.get("gateway_aggregates_in_flight") == 0


def test_hedging_is_off_unless_asked_for(
    make_gateway: GatewayFactory, shard_urls: list[str]
) -> None:
    with make_gateway(shard_urls, shard_timeout_ms=2000) as client:
        for _ in range(WARM_AGGREGATES):
            client.get("/api/aggregate")
        metrics = _metrics(client)
    assert metrics.get("gateway_hedges_sent_total") == 0


def test_a_loser_still_running_at_its_deadline_is_cut_and_gives_its_permit_back(
    make_gateway: GatewayFactory, shard_urls: list[str]
) -> None:
    # Slow first calls that outlive the shard timeout: each is answered for by its hedge,
    # then runs on until its deadline, and is cut there.
    with make_gateway(shard_urls, shard_timeout_ms=400, hedge=True) as client:
        for _ in range(WARM_AGGREGATES):
            assert client.get("/api/aggregate").status_code == 200
        fault = {"shards": "all", "kind": "latency", "latency": "fixed:3000",
                 "probability": SLOW_PROBABILITY, "id": "hedging-cut"}  # fmt: skip
        assert client.post("/admin/faults", json=fault, headers=ADMIN).status_code == 201
        try:
            for index in range(MEASURED_AGGREGATES):
                client.get("/api/aggregate", headers={"x-request-id": f"hedging-{index}"})
        finally:
            assert client.delete("/admin/faults", headers=ADMIN).status_code == 200
        wait_until(
            lambda: _metrics(client).get("gateway_semaphore_in_use") == 0, 5, "losers to be cut"
        )
        metrics = _metrics(client)
    losers = [
        metrics.get("gateway_hedge_losers_total", fate=fate) for fate in ("ended", "finished")
    ]
    cut = metrics.get("gateway_hedge_losers_total", fate="cut")
    assert cut >= 3  # about 3 % of 400 calls were slow
    assert sum(losers) + cut == metrics.get("gateway_hedges_sent_total")
