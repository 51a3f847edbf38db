"""`shardstack bench compare` (and `tail`): the same shards and the same load against
each variant, one after the other, in one run; the result is their ratios."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from shardstack.bench.lab import lab
from shardstack.bench.load import LoadPlan, Tick
from shardstack.bench.loopback_limit import LoopbackLimit, measure_loopback_limit
from shardstack.bench.measure import Measurement, measure
from shardstack.bench.shard_calls import hedge_losers, shard_calls
from shardstack.bench.variants import Variant
from shardstack.launcher.plan import Stack

TickFactory = Callable[[str], Tick]


async def compare(
    stack: Stack,
    variants: Sequence[Variant],
    plan: LoadPlan,
    rounds: int,
    log_dir: Path,
    echo: Callable[[str], None],
    ticks: TickFactory,
) -> tuple[list[Measurement], LoopbackLimit | None]:
    """Start the shards once, then each variant in turn (`rounds` times, alternating);
    per variant, the round with the median throughput. Then, with the same shards, the
    physical limit (None without wrk)."""
    specs = [variant.spec(stack) for variant in variants]
    runs: dict[str, list[Measurement]] = {variant.name: [] for variant in variants}
    async with lab(stack, specs[0], log_dir, echo) as running:
        for round_index in range(rounds):
            for variant, spec in zip(variants, specs, strict=True):
                label = (
                    variant.name if rounds == 1 else f"{variant.name} {round_index + 1}/{rounds}"
                )
                echo(f"{label}: {variant.description}; {plan.describe()}")
                async with running.serving(spec) as server:
                    calls_before = await shard_calls(stack.shards)
                    result = await measure(variant.name, plan, server, ticks(label), running.shards)
                    # Over warm-up and recording, against every answer the load got in both.
                    result.shard_calls = await shard_calls(stack.shards) - calls_before
                    result.hedge_losers = await hedge_losers(stack.gateway_url)
                    runs[variant.name].append(result)
        echo("physical limit: wrk against one shard, alone")
        limit = await asyncio.to_thread(
            measure_loopback_limit, stack.gateway.shard_urls[0] + "/data"
        )
    return [_median(runs[variant.name]) for variant in variants], limit


def _median(measurements: list[Measurement]) -> Measurement:
    """The run whose throughput is the median, kept whole (its latencies belong to it)."""
    ordered = sorted(measurements, key=lambda m: m.recording.throughput())
    return ordered[(len(ordered) - 1) // 2]  # the lower median when even
