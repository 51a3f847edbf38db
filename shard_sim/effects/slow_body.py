"""`slow_body`: the headers at once, then the body dribbled out at the fault's rate."""

from __future__ import annotations

import asyncio
import random
import time
from functools import partial

from shard_sim.effects import shapes
from shard_sim.effects.answer import Answer, Wire
from shardstack_kernel.faults.kinds.slow_body import SlowBodyFault

_TICK_S = 0.05


@shapes(SlowBodyFault)
def shape(fault: SlowBodyFault, answer: Answer, rng: random.Random) -> bool:
    return answer.take_delivery(partial(_deliver, fault))


async def _deliver(fault: SlowBodyFault, answer: Answer, wire: Wire) -> None:
    await wire.start(answer)
    body = answer.body
    started = time.monotonic()
    sent = 0
    # Paced against the clock, not per tick, so scheduling delays do not slow the rate.
    while sent < len(body) and not wire.closing():
        await asyncio.sleep(_TICK_S)
        due = min(len(body), int((time.monotonic() - started) * fault.bytes_per_s))
        if due > sent:
            await wire.body(body[sent:due], more=True)
            sent = due
    await wire.body(b"", more=False)
