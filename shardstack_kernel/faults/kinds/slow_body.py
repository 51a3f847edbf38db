"""`slow_body`: headers at once, then the body dribbled out at a fixed rate."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shardstack_kernel.faults.kind import Fault


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
