"""`hang`: no answer until the client leaves, or the answer late."""

from __future__ import annotations

import asyncio
import random
from functools import partial

from shard_sim.effects import shapes
from shard_sim.effects.answer import Answer, Wire, send_plainly
from shardstack_kernel.faults.kinds.hang import HangFault


@shapes(HangFault)
def shape(fault: HangFault, answer: Answer, rng: random.Random) -> bool:
    return answer.take_delivery(partial(_deliver, fault))


async def _deliver(fault: HangFault, answer: Answer, wire: Wire) -> None:
    if fault.answer_after_ms is None:
        await wire.disconnected()
        return
    try:
        async with asyncio.timeout(fault.answer_after_ms / 1000.0):
            await wire.disconnected()
            return
    except TimeoutError:
        await send_plainly(answer, wire)
