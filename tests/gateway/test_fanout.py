"""The semaphore bounds concurrent shard calls; waiting for it counts toward the deadline."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.fanout import FanOut
from gateway.metrics import GatewayMetrics
from gateway.permits import Permits
from gateway.results import ShardOutcome
from gateway.settings import GatewaySettings
from gateway.shards import shard_table
from gateway.upstream import create_upstream
from tests.conftest import StartShard

DELAY_MS = 200


@pytest.fixture(scope="module")
def slow_shard_urls(start_shard: StartShard) -> list[str]:
    return [start_shard(shard_id, f"fixed:{DELAY_MS}").url for shard_id in range(4)]


async def _fan_out(
    urls: list[str], semaphore_size: int, timeout_s: float
) -> tuple[list[float], list[ShardOutcome]]:
    settings = GatewaySettings(shard_urls=tuple(urls))
    upstream = create_upstream(settings)
    try:
        metrics = GatewayMetrics(range(len(urls)))
        fanout = FanOut(upstream, Permits(semaphore_size, metrics), 5.0, metrics)
        deadline = asyncio.get_running_loop().time() + timeout_s
        results = await fanout.run(shard_table(settings.shard_urls), deadline)
    finally:
        await upstream.aclose()
    return [result.latency_ms for result in results], [result.status for result in results]


def test_calls_run_concurrently_when_the_semaphore_allows(slow_shard_urls: list[str]) -> None:
    started = time.perf_counter()
    latencies, outcomes = asyncio.run(_fan_out(slow_shard_urls, 4, 5.0))
    took_ms = (time.perf_counter() - started) * 1000
    assert outcomes == [ShardOutcome.OK] * 4
    assert max(latencies) < 2 * DELAY_MS
    assert took_ms < 3 * DELAY_MS


def test_a_semaphore_of_one_serialises_calls(slow_shard_urls: list[str]) -> None:
    latencies, outcomes = asyncio.run(_fan_out(slow_shard_urls, 1, 5.0))
    assert outcomes == [ShardOutcome.OK] * 4
    # Each call waited for the ones before it: roughly 200, 400, 600, 800 ms.
    ordered = sorted(latencies)
    for rank, latency in enumerate(ordered, start=1):
        assert latency >= rank * DELAY_MS * 0.95


def test_calls_still_queued_at_the_deadline_time_out_without_overrunning(
    slow_shard_urls: list[str],
) -> None:
    started = time.perf_counter()
    _, outcomes = asyncio.run(_fan_out(slow_shard_urls, 1, 0.5))
    took_ms = (time.perf_counter() - started) * 1000
    assert outcomes.count(ShardOutcome.OK) == 2
    assert outcomes.count(ShardOutcome.TIMEOUT) == 2
    assert took_ms < 500 + 300
