"""Each upstream client against a real shard process: no call sent twice behind the
gateway's back, cancelled calls leave no connection open, the cap holds, and the pool
counts match what the kernel sees at the shard."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gateway.settings import GatewaySettings
from gateway.upstream import (
    UPSTREAM_CLIENTS,
    ConnectionHooks,
    UpstreamClient,
    UpstreamResetError,
    create_upstream,
)
from tests.support import ADMIN, ShardProcess, StartShard

CLIENTS = sorted(UPSTREAM_CLIENTS)
_ESTABLISHED = "01"
POLL_S = 0.05


@pytest.fixture(scope="module")
def shard(start_shard: StartShard) -> ShardProcess:
    return start_shard(0, "fixed:1")


@pytest.fixture(autouse=True)
def no_faults_left(shard: ShardProcess) -> Iterator[None]:
    yield
    _clear(shard)


def _clear(shard: ShardProcess) -> None:
    httpx.delete(f"{shard.admin_url}/admin/faults", headers=ADMIN).raise_for_status()


def _inject(shard: ShardProcess, **fault: object) -> None:
    httpx.post(f"{shard.admin_url}/admin/faults", json=fault, headers=ADMIN).raise_for_status()


def _client(
    shard: ShardProcess, name: str, pool: int, hooks: ConnectionHooks | None = None
) -> UpstreamClient:
    settings = GatewaySettings(
        shard_urls=(shard.url,),
        upstream_client=name,
        pool_max_connections=pool,
        shard_timeout_ms=1000,
    )
    return create_upstream(settings, hooks)


def _served_connections(port: int) -> int:
    """Connections the shard holds open, from the kernel's table (its side of each)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == _ESTABLISHED and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


@pytest.mark.parametrize("name", CLIENTS)
def test_a_reset_on_a_kept_alive_connection_is_seen_once_not_retried(
    shard: ShardProcess, name: str
) -> None:
    async def scenario() -> None:
        client = _client(shard, name, pool=4)
        try:
            assert (await client.get(f"{shard.url}/data")).status == 200  # one kept alive
            _inject(shard, kind="reset")
            before = shard.calls_received()
            for _ in range(5):
                with pytest.raises(UpstreamResetError):
                    await client.get(f"{shard.url}/data")
            assert shard.calls_received() - before == 5
        finally:
            await client.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize("name", CLIENTS)
def test_cancelled_calls_close_their_connections_and_the_cap_holds(
    shard: ShardProcess, name: str
) -> None:
    opened: list[int] = []
    hooks = ConnectionHooks(lambda: opened.append(1))

    async def scenario() -> None:
        client = _client(shard, name, pool=5, hooks=hooks)
        try:
            _inject(shard, kind="hang")
            for _ in range(3):  # 30 calls given up mid-flight, 5 on the wire at a time
                calls = [asyncio.create_task(client.get(f"{shard.url}/data")) for _ in range(10)]
                await asyncio.sleep(0.3)
                stats = client.pool_stats()
                assert (stats.active, stats.pending) == (5, 5), stats
                assert _served_connections(shard.port) == 5
                for call in calls:
                    call.cancel()
                results = await asyncio.gather(*calls, return_exceptions=True)
                assert all(isinstance(r, asyncio.CancelledError) for r in results)
                # No connection stays on an answer nobody reads (at most the shard
                # timeout, for a client that cannot stop a call it started).
                await _eventually(lambda: _served_connections(shard.port) == 0)
                # The client hears of each close a moment after the kernel's table shows it.
                await _eventually(lambda: client.pool_stats().active == 0)
            _clear(shard)

            answers = await asyncio.gather(*(client.get(f"{shard.url}/data") for _ in range(20)))
            assert {answer.status for answer in answers} == {200}
            assert _served_connections(shard.port) <= 5
            await _eventually(lambda: _matches_kernel(client, shard.port))
        finally:
            await client.aclose()
        await _eventually(lambda: _served_connections(shard.port) == 0)

    asyncio.run(scenario())
    assert len(opened) >= 15  # the given-up calls' connections were replaced


def _matches_kernel(client: UpstreamClient, port: int) -> bool:
    stats = client.pool_stats()
    return stats.active == 0 and stats.pending == 0 and stats.idle == _served_connections(port)


async def _eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / POLL_S)):
        if condition():
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"not within {timeout_s:g}s")
