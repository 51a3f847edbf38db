"""`hang`: accept the request and never answer until the client gives up, or answer late."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shardstack_kernel.faults.kind import Fault
from shardstack_kernel.latency import PositiveMillis


class HangFault(Fault):
    order = 2
    seen_as = "`timeout` at the call's deadline"

    kind: Literal["hang"] = "hang"
    answer_after_ms: PositiveMillis | None = Field(
        None, description="answer after this long; default never (until the client leaves)"
    )
