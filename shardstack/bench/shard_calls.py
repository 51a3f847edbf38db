"""How many calls the shards received, read from their own counters (hedges included)."""

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
