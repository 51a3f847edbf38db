"""The semaphore bounds concurrent shard calls; waiting for it counts toward the deadline;
waiting too long for it, or queueing too deep, sheds the request."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.fanout import FanOut
from gateway.metrics import GatewayMetrics
from gateway.overload import Overloaded, ShedReason
from gateway.permits import Permits
from gateway.results import ShardOutcome
from gateway.settings import GatewaySettings
from gateway.shards import shard_table
from gateway.upstream import create_upstream
from tests.support import StartShard

DELAY_MS = 200


@pytest.fixture(scope="module")
def slow_shard_urls(start_shard: StartShard) -> list[str]:
    return [start_shard(shard_id, f"fixed:{DELAY_MS}").url for shard_id in range(4)]


async def _fan_out(
    urls: list[str],
    semaphore_size: int,
    timeout_s: float,
    permit_wait_s: float = 10.0,
    max_queued: int = 100,
) -> tuple[list[float], list[ShardOutcome]]:
    settings = GatewaySettings(shard_urls=tuple(urls))
    upstream = create_upstream(settings)
    try:
        metrics = GatewayMetrics(range(len(urls)))
        permits = Permits(semaphore_size, max_queued, permit_wait_s, metrics)
        fanout = FanOut(upstream, permits, 5.0, metrics)
        deadline = asyncio.get_running_loop().time() + timeout_s
        results = await fanout.run(shard_table(settings.shard_urls), deadline, "fan-out-test")
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


def test_a_request_that_would_queue_too_deep_is_shed_at_once(slow_shard_urls: list[str]) -> None:
    # One permit: three of its four calls would wait, past a queue of two.
    started = time.perf_counter()
    with pytest.raises(Overloaded) as shed:
        asyncio.run(_fan_out(slow_shard_urls, 1, 5.0, max_queued=2))
    assert shed.value.reason is ShedReason.QUEUE_FULL
    assert (time.perf_counter() - started) * 1000 < DELAY_MS  # no shard was waited for


def test_a_queue_as_deep_as_the_request_needs_admits_it(slow_shard_urls: list[str]) -> None:
    _, outcomes = asyncio.run(_fan_out(slow_shard_urls, 1, 5.0, max_queued=3))
    assert outcomes == [ShardOutcome.OK] * 4


def test_a_call_that_waits_too_long_for_a_permit_sheds_its_request(
    slow_shard_urls: list[str],
) -> None:
    # One permit, calls of 200 ms: the third call would get it at 400 ms, past 300.
    started = time.perf_counter()
    with pytest.raises(Overloaded) as shed:
        asyncio.run(_fan_out(slow_shard_urls, 1, 5.0, permit_wait_s=0.3))
    took_ms = (time.perf_counter() - started) * 1000
    assert shed.value.reason is ShedReason.PERMIT_WAIT
    assert took_ms < 5000 / 2  # well before the deadline


def test_a_permit_wait_past_the_deadline_leaves_the_deadline_in_charge(
    slow_shard_urls: list[str],
) -> None:
    _, outcomes = asyncio.run(_fan_out(slow_shard_urls, 1, 0.5, permit_wait_s=2.0))
    assert outcomes.count(ShardOutcome.OK) == 2
    assert outcomes.count(ShardOutcome.TIMEOUT) == 2


def test_a_request_that_would_wait_too_long_at_the_measured_rate_is_shed_at_once(
    slow_shard_urls: list[str],
) -> None:
    # One permit passed on every 200 ms: once that rate is measured, a second request's
    # four calls behind the first one's last would wait about a second, past 0.7 s (the
    # first request's own last call waits 0.6 s).
    async def scenario() -> tuple[list[ShardOutcome], ShedReason, float]:
        settings = GatewaySettings(shard_urls=tuple(slow_shard_urls))
        upstream = create_upstream(settings)
        try:
            metrics = GatewayMetrics(range(len(slow_shard_urls)))
            fanout = FanOut(upstream, Permits(1, 100, 0.7, metrics), 5.0, metrics)
            shards = shard_table(settings.shard_urls)
            deadline = asyncio.get_running_loop().time() + 5.0
            first = asyncio.create_task(fanout.run(shards, deadline, "fan-out-test"))
            await asyncio.sleep(DELAY_MS * 2.5 / 1000)  # two hand-offs measured
            started = time.perf_counter()
            with pytest.raises(Overloaded) as shed:
                await fanout.run(shards, deadline, "fan-out-test")
            shed_after = time.perf_counter() - started
            return [r.status for r in await first], shed.value.reason, shed_after
        finally:
            await upstream.aclose()

    first_outcomes, reason, shed_after_s = asyncio.run(scenario())
    assert reason is ShedReason.QUEUE_WAIT
    assert shed_after_s < DELAY_MS / 1000  # refused without waiting for a permit
    assert first_outcomes == [ShardOutcome.OK] * 4  # the admitted request is untouched
