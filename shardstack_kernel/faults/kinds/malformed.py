"""`malformed`: invalid JSON, a body cut short of its Content-Length, or bytes that are not HTTP."""

from __future__ import annotations

import random
from typing import Literal

from pydantic import Field

from shardstack_kernel.faults.answer import Answer, Wire
from shardstack_kernel.faults.kind import Fault


class MalformedFault(Fault):
    order = 4
    seen_as = "`error` with the reason in `detail`"

    kind: Literal["malformed"] = "malformed"
    mode: Literal["invalid_json", "truncated", "garbage"] = Field(
        "invalid_json",
        description="invalid_json: 200 with a broken body; truncated: body shorter than "
        "its Content-Length, then close; garbage: random bytes instead of HTTP, then close",
    )
    garbage_bytes: int = Field(64, ge=1, le=1 << 20, description="length of the garbage")

    def shape(self, answer: Answer, rng: random.Random) -> bool:
        if self.mode == "invalid_json":
            answer.body = answer.body[: max(len(answer.body) // 2, 1)] + b"\x00}{"
            return True
        if self.mode == "truncated":
            return answer.take_delivery(_truncated)
        garbage = b"\x16\x03" + rng.randbytes(self.garbage_bytes)  # never a valid status line

        async def deliver(answer: Answer, wire: Wire) -> None:
            wire.write_raw(garbage)
            await wire.close()

        return answer.take_delivery(deliver)


async def _truncated(answer: Answer, wire: Wire) -> None:
    await wire.start(answer)
    await wire.body(answer.body[: len(answer.body) // 2], more=True)
    await wire.close()
