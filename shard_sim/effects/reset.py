"""`reset`: the connection broken with a TCP RST, before the answer or part-way through."""

from __future__ import annotations

import asyncio
import random
from functools import partial

from shard_sim.effects import shapes
from shard_sim.effects.answer import Answer, Wire
from shardstack_kernel.faults.kinds.reset import ResetFault

# Time for the client to read the partial answer before the reset arrives, as it
# would from a server that crashed mid-write.
_PARTIAL_PAUSE_S = 0.02


@shapes(ResetFault)
def shape(fault: ResetFault, answer: Answer, rng: random.Random) -> bool:
    return answer.take_delivery(partial(_deliver, fault))


async def _deliver(fault: ResetFault, answer: Answer, wire: Wire) -> None:
    if fault.after_bytes:
        partial_body = answer.body[: min(fault.after_bytes, max(len(answer.body) - 1, 0))]
        await wire.start(answer)
        await wire.body(partial_body, more=True)
        await asyncio.sleep(_PARTIAL_PAUSE_S)
    await wire.reset()
