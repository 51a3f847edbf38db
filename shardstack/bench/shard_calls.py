"""How many calls the shards received, read from their own counters (hedges included),
and what became of a hedging gateway's losing calls, read from its own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp

from shard_sim.settings import ShardSettings
from shardstack.bench.exposition import Samples


async def shard_calls(shards: Sequence[ShardSettings]) -> float:
    """The sum of every shard's `shard_requests_total`, from its admin /metrics."""
    timeout = aiohttp.ClientTimeout(total=5.0)
    async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
        counts = await asyncio.gather(*(_calls(session, shard) for shard in shards))
    return sum(counts)


async def _calls(session: aiohttp.ClientSession, shard: ShardSettings) -> float:
    async with session.get(f"http://{shard.host}:{shard.admin_port}/metrics") as response:
        text = await response.text()
    return Samples.parse(text).total("shard_requests_total")


HEDGE_LOSERS = "gateway_hedge_losers"
_SETTLE_S = 3.0


async def hedge_losers(gateway_url: str) -> dict[str, float] | None:
    """`gateway_hedge_losers_total` by fate once no call is in flight (losers run on after
    the answer, at most a few seconds); None if the server sent no hedge or has no such
    metric (the seed, the floor)."""
    timeout = aiohttp.ClientTimeout(total=5.0)
    loop = asyncio.get_running_loop()
    settle_by = loop.time() + _SETTLE_S
    async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
        while True:
            try:
                async with session.get(f"{gateway_url}/metrics") as response:
                    text = await response.text() if response.status == 200 else ""
            except (aiohttp.ClientError, TimeoutError):
                return None
            samples = Samples.parse(text)
            losers = samples.by_label(f"{HEDGE_LOSERS}_total", "fate")
            in_flight = samples.total("gateway_semaphore_in_use")
            if not any(losers.values()):  # not a hedging gateway, or no hedge sent
                return None
            if in_flight == 0 or loop.time() >= settle_by:
                return losers
            await asyncio.sleep(0.2)
