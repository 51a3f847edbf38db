"""What a running shard holds: its current latency model, its RNG and its payload."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import orjson

from shard_sim.latency import LatencyModel
from shard_sim.settings import ShardSettings


@dataclass(slots=True)
class ShardState:
    """Mutable runtime state of one shard; the admin routes change `latency`."""

    shard_id: int
    latency: LatencyModel
    rng: random.Random
    records: orjson.Fragment
    record_count: int
    pid: int

    @classmethod
    def from_settings(cls, settings: ShardSettings) -> ShardState:
        return cls(
            shard_id=settings.id,
            latency=settings.latency,
            # A string seed is hashed (SHA-512) so nearby seeds give unrelated streams.
            rng=random.Random(f"shardstack:{settings.seed}:{settings.id}"),
            records=orjson.Fragment(_records(settings)),
            record_count=settings.records,
            pid=os.getpid(),
        )

    def next_delay_s(self) -> float:
        return self.latency.sample_ms(self.rng) / 1000.0


def _records(settings: ShardSettings) -> bytes:
    """The payload is the same for every answer, so it is serialised once at start."""
    value = "x" * settings.record_bytes
    return orjson.dumps(
        [
            {"id": index, "key": f"shard-{settings.id}-{index}", "value": value}
            for index in range(settings.records)
        ]
    )
