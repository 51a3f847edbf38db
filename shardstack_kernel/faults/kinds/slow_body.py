"""`slow_body`: headers at once, then the body dribbled out at a fixed rate."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Literal

from pydantic import Field

from shardstack_kernel.faults.answer import Answer, Wire
from shardstack_kernel.faults.kind import Fault

_TICK_S = 0.05


class SlowBodyFault(Fault):
    order = 5
    seen_as = (
        "headers at once (`headers_ms` small), the body dribbled: a late `ok`, or a "
        '`timeout` with `detail: "headers arrived, body did not"`'
    )

    kind: Literal["slow_body"] = "slow_body"
    bytes_per_s: float = Field(
        gt=0, le=1e9, allow_inf_nan=False, description="body rate in bytes per second"
    )

    def shape(self, answer: Answer, rng: random.Random) -> bool:
        return answer.take_delivery(self._deliver)

    async def _deliver(self, answer: Answer, wire: Wire) -> None:
        await wire.start(answer)
        body = answer.body
        started = time.monotonic()
        sent = 0
        # Paced against the clock, not per tick, so scheduling delays do not slow the rate.
        while sent < len(body) and not wire.closing():
            await asyncio.sleep(_TICK_S)
            due = min(len(body), int((time.monotonic() - started) * self.bytes_per_s))
            if due > sent:
                await wire.body(body[sent:due], more=True)
                sent = due
        await wire.body(b"", more=False)
