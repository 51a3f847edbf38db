"""`hang`: accept the request and never answer until the client gives up, or answer late."""

from __future__ import annotations

import asyncio
import random
from typing import Literal

from pydantic import Field

from shardstack_kernel.faults.answer import Answer, Wire, send_plainly
from shardstack_kernel.faults.kind import Fault
from shardstack_kernel.latency import PositiveMillis


class HangFault(Fault):
    order = 2
    seen_as = "`timeout` at the call's deadline"

    kind: Literal["hang"] = "hang"
    answer_after_ms: PositiveMillis | None = Field(
        None, description="answer after this long; default never (until the client leaves)"
    )

    def shape(self, answer: Answer, rng: random.Random) -> bool:
        return answer.take_delivery(self._deliver)

    async def _deliver(self, answer: Answer, wire: Wire) -> None:
        if self.answer_after_ms is None:
            await wire.disconnected()
            return
        try:
            async with asyncio.timeout(self.answer_after_ms / 1000.0):
                await wire.disconnected()
                return
        except TimeoutError:
            await send_plainly(answer, wire)
