"""The gateway's metrics are the whole gateway's: gunicorn with two real workers, real
shards held slow, load from client threads, and /metrics read while it is held."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shardstack.bench.exposition import Samples
from tests.e2e.observe import HeldLoad, scrape, wait_for
from tests.e2e.stack import StartStack, gunicorn_workers

PERMITS = 3  # GATEWAY_SEMAPHORE_SIZE, per worker
POOL = 2  # GATEWAY_POOL_MAX_CONNECTIONS, per worker
WORKERS = 2


def _in_use(samples: Samples) -> float:
    return samples.get("gateway_semaphore_in_use")


def _waiting(samples: Samples) -> float:
    return samples.get("gateway_semaphore_waiting")


def _idle_gateway(samples: Samples) -> bool:
    return (
        _in_use(samples) == 0
        and _waiting(samples) == 0
        and samples.get("gateway_aggregates_in_flight") == 0
    )


def _all_workers_started(url: str, capacity: str, per_worker: int) -> Samples:
    return wait_for(
        url, lambda s: s.get(capacity) == per_worker * WORKERS, timeout_s=30, what=capacity
    )


def test_semaphore_occupancy_sums_every_worker_and_returns_to_zero(start: StartStack) -> None:
    # Four slow shards per aggregate against three permits: every busy worker holds all
    # its permits and queues the fourth call.
    stack = start(
        "--workers", str(WORKERS), "--latency", "fixed:400",
        shards=4, GATEWAY_SEMAPHORE_SIZE=str(PERMITS), GATEWAY_PERMIT_WAIT_MS="10000",
    )  # fmt: skip
    # The stack is up once one worker answers; the other may still be starting.
    before = _all_workers_started(stack.gateway_url, "gateway_semaphore_capacity", PERMITS)
    assert _idle_gateway(before)

    with HeldLoad(f"{stack.gateway_url}/api/aggregate?timeout_ms=8000", threads=8) as load:
        held = wait_for(
            stack.gateway_url,
            lambda s: _in_use(s) == PERMITS * WORKERS and _waiting(s) > 0,
            timeout_s=30,
            what="gateway_semaphore",
        )
        assert held.get("gateway_aggregates_in_flight") >= WORKERS
        for _ in range(20):
            assert _in_use(scrape(stack.gateway_url)) <= PERMITS * WORKERS

    wait_for(stack.gateway_url, _idle_gateway, timeout_s=10, what="gateway_")
    assert set(load.outcomes) == {"200"}, load.outcomes
    after = scrape(stack.gateway_url)
    waits = after.get("gateway_semaphore_wait_seconds_count")
    assert waits == 4 * load.outcomes["200"]
    assert after.total("gateway_aggregate_requests_total") == load.outcomes["200"]


@pytest.mark.parametrize("client", ["httpx", "aiohttp", "pyreqwest"])
def test_pool_numbers_come_from_the_client(start: StartStack, client: str) -> None:
    # One aggregate of five slow shards through a pool of two: two calls hold the pool's
    # connections, three wait for one.
    stack = start(
        "--workers", str(WORKERS), "--latency", "fixed:1500",
        shards=5, GATEWAY_POOL_MAX_CONNECTIONS=str(POOL), GATEWAY_SHARD_TIMEOUT_MS="10000",
        GATEWAY_UPSTREAM_CLIENT=client,
    )  # fmt: skip
    _all_workers_started(stack.gateway_url, "gateway_pool_max_connections", POOL)

    url = f"{stack.gateway_url}/api/aggregate?timeout_ms=9000"
    with HeldLoad(url, threads=1, max_requests=1) as load:
        wait_for(
            stack.gateway_url,
            lambda s: (
                s.get("gateway_pool_connections", state="active") == POOL
                and s.get("gateway_pool_pending_requests") == 3
            ),
            timeout_s=10,
            what="gateway_pool",
        )
    assert load.outcomes == {"200": 1}

    after = wait_for(
        stack.gateway_url,
        lambda s: (
            s.get("gateway_pool_connections", state="active") == 0
            and s.get("gateway_pool_pending_requests") == 0
        ),
        timeout_s=10,
        what="gateway_pool",
    )
    opened = after.get("gateway_pool_connections_opened_total")
    closed = after.get("gateway_pool_connections_closed_total")
    # Five shards through two connections: some were closed to open others.
    assert opened >= 5
    assert opened - closed == after.get("gateway_pool_connections", state="idle")


def test_a_killed_workers_values_leave_the_sums(start: StartStack) -> None:
    stack = start(
        "--workers", str(WORKERS), "--latency", "fixed:1500",
        shards=4, GATEWAY_SEMAPHORE_SIZE=str(PERMITS), GATEWAY_PERMIT_WAIT_MS="10000",
        GATEWAY_SHARD_TIMEOUT_MS="10000",
    )  # fmt: skip
    url = f"{stack.gateway_url}/api/aggregate?timeout_ms=9000"
    with HeldLoad(url, threads=8) as load:
        wait_for(
            stack.gateway_url,
            lambda s: _in_use(s) == PERMITS * WORKERS,
            timeout_s=30,
            what="gateway_semaphore",
        )
        load.stop_sending()
        counted = scrape(stack.gateway_url).total("gateway_shard_requests_total")
        victim = gunicorn_workers(stack)[0]
        os.kill(victim, signal.SIGKILL)

    # Every client has its answer (or its broken connection); what the dead worker held
    # is gone from the gauges, the replacement's capacity is in, counts only grew.
    after = wait_for(
        stack.gateway_url,
        lambda s: _idle_gateway(s) and s.get("gateway_semaphore_capacity") == PERMITS * WORKERS,
        timeout_s=20,
        what="gateway_",
    )
    assert victim not in gunicorn_workers(stack)
    assert len(gunicorn_workers(stack)) == WORKERS
    assert after.get("gateway_pool_max_connections") == 100 * WORKERS
    assert after.total("gateway_shard_requests_total") >= counted
    cut = sum(count for outcome, count in load.outcomes.items() if outcome != "200")
    assert cut >= 1, load.outcomes  # the killed worker held requests


def test_an_operators_metrics_directory_is_emptied_and_used_by_the_gateway_alone(
    start: StartStack, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    # A value left from an earlier run, as prometheus-client writes it.
    stale = (
        "from prometheus_client import Counter;"
        "Counter('gateway_aggregate_requests', '', ['status']).labels('complete').inc(1000)"
    )
    subprocess.run(
        [sys.executable, "-c", stale],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
        check=True,
    )
    assert list(metrics_dir.glob("counter_*.db"))

    stack = start(shards=2, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    _all_workers_started(stack.gateway_url, "gateway_semaphore_capacity", 100)
    assert scrape(stack.gateway_url).get("gateway_aggregate_requests_total", status="complete") == 0
    with HeldLoad(f"{stack.gateway_url}/api/aggregate", threads=2, max_requests=10) as load:
        load.finish()
    assert (
        scrape(stack.gateway_url).get("gateway_aggregate_requests_total", status="complete") == 10
    )

    writers = {int(path.stem.rsplit("_", 1)[1]) for path in metrics_dir.glob("*.db")}
    assert writers == set(gunicorn_workers(stack))
    stack.stop()
    assert metrics_dir.is_dir()
