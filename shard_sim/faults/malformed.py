"""`malformed`: invalid JSON, a body cut short of its Content-Length, or bytes that are not HTTP."""

from __future__ import annotations

import random
from typing import Literal

from pydantic import Field
from starlette.types import Receive, Scope, Send

from shard_sim.faults.base import Answer, Fault, close_connection, transport_of


class MalformedFault(Fault):
    order = 4

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
            return answer.take_delivery(self._truncated)
        garbage = b"\x16\x03" + rng.randbytes(self.garbage_bytes)  # never a valid status line

        async def deliver(answer: Answer, scope: Scope, receive: Receive, send: Send) -> None:
            transport = transport_of(scope)
            transport.write(garbage)
            await close_connection(transport)

        return answer.take_delivery(deliver)

    async def _truncated(self, answer: Answer, scope: Scope, receive: Receive, send: Send) -> None:
        await send(answer.start_message())
        half = answer.body[: len(answer.body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})
        await close_connection(transport_of(scope))
