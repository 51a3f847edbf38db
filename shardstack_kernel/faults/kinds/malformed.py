"""`malformed`: invalid JSON, a body cut short of its Content-Length, or bytes that are not HTTP."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

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
