"""What a running shard holds: its latency model, RNG, payload, faults, capacity and
metrics."""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass, field
from typing import Protocol

import orjson
from pydantic import SecretStr

from shard_sim.active_faults import ActiveFaults
from shard_sim.capacity import CapacityGate
from shard_sim.decision_log import DecisionLog
from shard_sim.metrics import ShardMetrics
from shard_sim.received import Received
from shard_sim.settings import ShardSettings
from shardstack_kernel.latency import LatencyModel
from shardstack_kernel.latency_file import LatencyFiles


class DataListener(Protocol):
    """What the `down` fault acts on: the server's data listener."""

    async def set_data_down(self, down: bool) -> None: ...


class NoListener:
    """In-process apps (tests) have no listener of their own: `down` changes nothing."""

    async def set_data_down(self, down: bool) -> None:
        return None


@dataclass(slots=True)
class ShardState:
    """Mutable runtime state of one shard; the admin routes change `latency`, `faults`
    and the capacity's limits."""

    shard_id: int
    zone: str | None
    seed: int
    latency: LatencyModel
    rng: random.Random
    records: orjson.Fragment
    record_count: int
    pid: int
    admin_token: SecretStr
    faults: ActiveFaults
    metrics: ShardMetrics
    listener: DataListener
    capacity: CapacityGate
    decision_log: DecisionLog | None
    # Where `empirical` latencies given at runtime are read from (SHARD_LATENCY_DIR).
    latency_files: LatencyFiles
    # Set by the admin routes on every change, to wake the listener watch.
    faults_changed: asyncio.Event = field(default_factory=asyncio.Event)
    received: Received = field(default_factory=Received)

    @classmethod
    def from_settings(
        cls,
        settings: ShardSettings,
        admin_token: SecretStr,
        listener: DataListener,
        decision_log: DecisionLog | None = None,
    ) -> ShardState:
        metrics = ShardMetrics(settings.id, settings.zone)
        return cls(
            shard_id=settings.id,
            zone=settings.zone,
            seed=settings.seed,
            latency=settings.latency,
            # A string seed is hashed (SHA-512) so nearby seeds give unrelated streams.
            rng=random.Random(f"shardstack:{settings.seed}:{settings.id}"),
            records=orjson.Fragment(_records(settings)),
            record_count=settings.records,
            pid=os.getpid(),
            admin_token=admin_token,
            faults=ActiveFaults(settings.seed, settings.id),
            metrics=metrics,
            listener=listener,
            capacity=CapacityGate(settings.capacity, metrics),
            decision_log=decision_log,
            latency_files=settings.latency_files(),
        )


def _records(settings: ShardSettings) -> bytes:
    """The payload is the same for every answer, so it is serialised once at start."""
    value = "x" * settings.record_bytes
    return orjson.dumps(
        [
            {"id": index, "key": f"shard-{settings.id}-{index}", "value": value}
            for index in range(settings.records)
        ]
    )
