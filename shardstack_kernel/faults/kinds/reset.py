"""`reset`: break the connection with a TCP RST, before the answer or part-way through it."""

from __future__ import annotations

import asyncio
import random
from typing import Literal

from pydantic import Field

from shardstack_kernel.faults.answer import Answer, Wire
from shardstack_kernel.faults.kind import Fault

# Time for the client to read the partial answer before the reset arrives, as it
# would from a server that crashed mid-write.
_PARTIAL_PAUSE_S = 0.02


class ResetFault(Fault):
    order = 3
    seen_as = "`reset` (a TCP RST), retried once"

    kind: Literal["reset"] = "reset"
    after_bytes: int = Field(
        0, ge=0, le=1 << 30, description="body bytes sent before the reset; 0 = before headers"
    )

    def shape(self, answer: Answer, rng: random.Random) -> bool:
        return answer.take_delivery(self._deliver)

    async def _deliver(self, answer: Answer, wire: Wire) -> None:
        if self.after_bytes:
            partial = answer.body[: min(self.after_bytes, max(len(answer.body) - 1, 0))]
            await wire.start(answer)
            await wire.body(partial, more=True)
            await asyncio.sleep(_PARTIAL_PAUSE_S)
        await wire.reset()
