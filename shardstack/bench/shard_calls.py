"""How many calls the shards received, read from their own counters (hedges included),
and what became of a hedging gateway's losing calls, read from its own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from shard_sim.settings import ShardSettings


async def shard_calls(shards: Sequence[ShardSettings]) -> float:
    """The sum of every shard's `shard_requests_total`, from its admin /metrics."""
    timeout = aiohttp.ClientTimeout(total=5.0)
    async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
        counts = await asyncio.gather(*(_calls(session, shard) for shard in shards))
    return sum(counts)


async def _calls(session: aiohttp.ClientSession, shard: ShardSettings) -> float:
    async with session.get(f"http://{shard.host}:{shard.admin_port}/metrics") as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        if family.name == "shard_requests":
            return sum(sample.value for sample in family.samples if sample.name.endswith("_total"))
    return 0.0


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
            losers: dict[str, float] = {}
            in_flight = 0.0
            for family in text_string_to_metric_families(text):
                if family.name == HEDGE_LOSERS:
                    for sample in family.samples:
                        if sample.name.endswith("_total"):
                            losers[sample.labels["fate"]] = sample.value
                elif family.name == "gateway_semaphore_in_use":
                    in_flight = sum(sample.value for sample in family.samples)
            if not any(losers.values()):  # not a hedging gateway, or no hedge sent
                return None
            if in_flight == 0 or loop.time() >= settle_by:
                return losers
            await asyncio.sleep(0.2)
