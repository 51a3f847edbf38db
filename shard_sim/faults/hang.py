"""`hang`: accept the request and never answer until the client gives up, or answer late."""

from __future__ import annotations

import asyncio
import random
from typing import Literal

from pydantic import Field
from starlette.types import Receive, Scope, Send

from shard_sim.faults.base import Answer, Fault, send_plainly, wait_for_disconnect
from shard_sim.latency import PositiveMillis


class HangFault(Fault):
    order = 2

    kind: Literal["hang"] = "hang"
    answer_after_ms: PositiveMillis | None = Field(
        None, description="answer after this long; default never (until the client leaves)"
    )

    def shape(self, answer: Answer, rng: random.Random) -> bool:
        return answer.take_delivery(self._deliver)

    async def _deliver(self, answer: Answer, scope: Scope, receive: Receive, send: Send) -> None:
        if self.answer_after_ms is None:
            await wait_for_disconnect(receive)
            return
        try:
            async with asyncio.timeout(self.answer_after_ms / 1000.0):
                await wait_for_disconnect(receive)
                return
        except TimeoutError:
            await send_plainly(answer, scope, receive, send)
