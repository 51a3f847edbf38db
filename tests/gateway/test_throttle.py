"""Client-side adaptive throttling: the rule on its own, over time, and in the gateway
against a real shard that refuses every call."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gateway.throttle import AdaptiveThrottle
from tests.support import ADMIN, GatewayFactory, ShardProcess, StartShard

REFUSING = 1
WINDOW_S = 2.0


def test_a_shard_that_serves_everything_is_never_throttled() -> None:
    throttle = AdaptiveThrottle(k=2, window_s=10)
    for step in range(1000):
        now = step * 0.01
        assert throttle.allow(now, draw=0.0)
        throttle.accepted(now)
    assert throttle.refusal_probability() == 0


def test_the_refusal_probability_follows_requests_and_accepts() -> None:
    throttle = AdaptiveThrottle(k=2, window_s=10)
    for _ in range(99):  # draw 1.0 is never refused: these only count
        throttle.allow(0.0, draw=0.999999)
    for _ in range(10):
        throttle.accepted(0.0)
    # 99 requests, 10 accepts: (99 - 2 * 10) / (99 + 1)
    assert throttle.refusal_probability() == pytest.approx(0.79)
    assert not throttle.allow(0.0, draw=0.78)
    assert throttle.allow(0.0, draw=0.80)


def test_counts_older_than_the_window_are_forgotten() -> None:
    throttle = AdaptiveThrottle(k=2, window_s=10)
    for _ in range(100):
        throttle.allow(0.0, draw=0.999999)
    assert throttle.refusal_probability() > 0.9
    throttle.allow(5.0, draw=0.999999)  # half a window later, still counted
    assert throttle.refusal_probability() > 0.9
    throttle.allow(10.5, draw=0.999999)  # the first bucket has left the window
    assert throttle.refusal_probability() == pytest.approx(2 / 3)  # 2 requests, 0 accepts


def test_a_call_never_made_is_not_counted() -> None:
    throttle = AdaptiveThrottle(k=1, window_s=10)
    throttle.allow(0.0, draw=0.0)
    throttle.withdraw()
    assert throttle.refusal_probability() == 0
    throttle.withdraw()  # nothing left to withdraw: no negative counts
    assert throttle.allow(0.0, draw=0.0)
    throttle.accepted(0.0)
    assert throttle.refusal_probability() == 0


@pytest.mark.parametrize("k", ["0.5", "-1", "many"])
def test_a_throttle_k_between_zero_and_one_or_not_a_number_is_refused(k: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import gateway.gunicorn_conf"],
        env={**os.environ, "GATEWAY_THROTTLE_K": k},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("gateway: invalid setting: ")
    assert "GATEWAY_THROTTLE_K" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def shards(start_shard: StartShard) -> list[ShardProcess]:
    return [start_shard(shard_id, "fixed:1") for shard_id in range(2)]


@pytest.fixture
def gateway(make_gateway: GatewayFactory, shards: list[ShardProcess]) -> Iterator[TestClient]:
    urls = [shard.url for shard in shards]
    settings = {
        "throttle_k": 2,
        "throttle_window_s": WINDOW_S,
        "breaker_failures": 0,
        "retry_budget": 0,
    }
    with make_gateway(urls, **settings) as client:
        yield client
        client.delete("/admin/faults", headers=ADMIN)


def test_a_shard_refusing_every_call_is_mostly_refused_here_and_its_neighbour_is_not(
    gateway: TestClient, shards: list[ShardProcess]
) -> None:
    fault = {"shards": [REFUSING], "kind": "error", "status": 503}
    assert gateway.post("/admin/faults", json=fault, headers=ADMIN).status_code == 201
    before = shards[REFUSING].calls_received()
    statuses = []
    sent_at = []
    for _ in range(200):
        sent_at.append(time.monotonic())
        body = gateway.get("/api/aggregate").json()
        assert body["shards"][1 - REFUSING]["status"] == "ok"
        statuses.append(body["shards"][REFUSING]["status"])
    received = shards[REFUSING].calls_received() - before
    throttled = statuses.count("throttled")
    # With no accepts, p = requests / (requests + 1): after the first few, nearly all.
    assert throttled >= 180, statuses
    assert statuses.count("error") == received == 200 - throttled
    text = gateway.get("/metrics").text
    assert f'gateway_shard_requests_total{{outcome="throttled",shard="{REFUSING}"}}' in text

    # Recovered: the shard serves again; what it accepts, and the refusals leaving the
    # window, bring the probability back to zero. From R requests in the window and no
    # accepts, p = R / (R + 1); at the same rate each window takes p to 2p - 1 (what
    # was sent came back usable), so p reaches 0 after log2(R + 1) windows.
    assert gateway.delete("/admin/faults", headers=ADMIN).status_code == 200
    in_window = sum(sent >= time.monotonic() - WINDOW_S for sent in sent_at)
    windows = math.log2(in_window + 1) + 3  # and room for 50 answers in a row
    recovered_by = time.monotonic() + windows * WINDOW_S
    tail: list[str] = []
    while tail[-50:] != ["ok"] * 50 and time.monotonic() < recovered_by:
        tail.append(gateway.get("/api/aggregate").json()["shards"][REFUSING]["status"])
    assert tail[-50:] == ["ok"] * 50, tail
