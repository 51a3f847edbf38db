"""One measured run: the load's answers plus the server's CPU and memory while it ran."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from shardstack.bench.load import Inspect, LoadPlan, Tick, run_load
from shardstack.bench.processes import ProcessTree
from shardstack.bench.recording import Recording, cdf_ms
from shardstack_kernel.tasks import cancel_and_wait


@dataclass
class Measurement:
    name: str
    plan: LoadPlan
    recording: Recording
    cpu_s: float | None = None  # the server's CPU seconds during the recorded part
    peak_rss: int | None = None  # bytes, highest total over warm-up and recording
    shards_cpu_s: float | None = None  # the shards' CPU seconds, when they run here
    shard_calls: float | None = None  # calls the shards received, warm-up included
    hedge_losers: dict[str, float] | None = None  # a hedging gateway's, by fate

    def shard_calls_per_request(self) -> float | None:
        sent = self.recording.sent + self.recording.warmup_sent
        if self.shard_calls is None or not sent:
            return None
        return self.shard_calls / sent

    def shards_cpu_ms_per_answer(self) -> float | None:
        answers = self.recording.answers
        if self.shards_cpu_s is None or not answers:
            return None
        return self.shards_cpu_s * 1000.0 / answers

    def cpu_ms_per_answer(self) -> float | None:
        answers = self.recording.answers
        if self.cpu_s is None or not answers:
            return None
        return self.cpu_s * 1000.0 / answers

    def as_dict(self) -> dict[str, Any]:
        recording = self.recording
        return {
            "name": self.name,
            "mode": self.plan.mode,
            "connections": self.plan.connections,
            "rate": self.plan.rate,
            "duration_s": round(recording.elapsed_s, 3),
            "sent": recording.sent,
            "answers": recording.answers,
            "throughput": round(recording.throughput(), 2),
            "latency_ms": _by_percentile(recording.percentiles_ms()),
            "ok_latency_ms": _by_percentile(recording.percentiles_ms(recording.ok_latency)),
            "shed_latency_ms": _by_percentile(recording.percentiles_ms(recording.shed_latency)),
            "errors": recording.errors(),
            "cpu_s": self.cpu_s,
            "cpu_ms_per_answer": self.cpu_ms_per_answer(),
            "peak_rss_bytes": self.peak_rss,
            "shards_cpu_ms_per_answer": self.shards_cpu_ms_per_answer(),
            "shard_calls_per_request": self.shard_calls_per_request(),
            "hedge_losers": self.hedge_losers,
            "latency_cdf_ms": cdf_ms(recording.latency),
        }


async def measure(
    name: str,
    plan: LoadPlan,
    server: ProcessTree | None,
    tick: Tick | None = None,
    shards: ProcessTree | None = None,
    inspect: Inspect | None = None,
) -> Measurement:
    """Run `plan`; with `server`, read its CPU over the recorded part and watch its RSS;
    with `shards`, read theirs too (they share the machine's cores with the server);
    `inspect` is given the body of each 200 answer recorded."""
    if server is None:
        return Measurement(name, plan, await run_load(plan, tick, inspect=inspect))
    watcher = asyncio.create_task(server.watch_rss())
    cpu_before = shards_before = 0.0

    def measuring() -> None:
        nonlocal cpu_before, shards_before
        cpu_before = server.cpu_seconds()
        shards_before = 0.0 if shards is None else shards.cpu_seconds()

    try:
        recording = await run_load(plan, tick, measuring, inspect)
        cpu_s = server.cpu_seconds() - cpu_before
        shards_cpu_s = None if shards is None else shards.cpu_seconds() - shards_before
    finally:
        await cancel_and_wait(watcher)
    return Measurement(name, plan, recording, cpu_s, server.peak_rss, shards_cpu_s)


def _by_percentile(values: dict[float, float]) -> dict[str, float]:
    """Keyed for JSON; a percentile of no answers (NaN) is written as null."""
    return {str(p): v for p, v in values.items()}
