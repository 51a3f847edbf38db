"""`reset`: break the connection with a TCP RST, before the answer or part-way through it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shardstack_kernel.faults.kind import Fault


class ResetFault(Fault):
    order = 3
    seen_as = "`reset` (a TCP RST), retried once"

    kind: Literal["reset"] = "reset"
    after_bytes: int = Field(
        0, ge=0, le=1 << 30, description="body bytes sent before the reset; 0 = before headers"
    )
