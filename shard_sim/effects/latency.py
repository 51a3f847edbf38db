"""`latency`: a delay drawn from the fault's latency model, plus uniform jitter."""

from __future__ import annotations

import random

from shard_sim.effects import delays
from shardstack_kernel.faults.kinds.latency import LatencyFault


@delays(LatencyFault)
def delay_s(fault: LatencyFault, rng: random.Random) -> float:
    delay_ms = fault.latency.sample_ms(rng)
    if fault.jitter_ms:
        delay_ms += rng.uniform(-fault.jitter_ms, fault.jitter_ms)
    return max(delay_ms, 0.0) / 1000.0
