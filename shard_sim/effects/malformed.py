"""`malformed`: invalid JSON, a body cut short of its Content-Length, or bytes that are
not HTTP."""

from __future__ import annotations

import random

from shard_sim.effects import shapes
from shard_sim.effects.answer import Answer, Wire
from shardstack_kernel.faults.kinds.malformed import MalformedFault


@shapes(MalformedFault)
def shape(fault: MalformedFault, answer: Answer, rng: random.Random) -> bool:
    if fault.mode == "invalid_json":
        answer.body = answer.body[: max(len(answer.body) // 2, 1)] + b"\x00}{"
        return True
    if fault.mode == "truncated":
        return answer.take_delivery(_truncated)
    garbage = b"\x16\x03" + rng.randbytes(fault.garbage_bytes)  # never a valid status line

    async def deliver(answer: Answer, wire: Wire) -> None:
        wire.write_raw(garbage)
        await wire.close()

    return answer.take_delivery(deliver)


async def _truncated(answer: Answer, wire: Wire) -> None:
    await wire.start(answer)
    await wire.body(answer.body[: len(answer.body) // 2], more=True)
    await wire.close()
