"""`error`: answer with a chosen HTTP status and body instead of the data."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shardstack_kernel.faults.kind import Fault


class ErrorFault(Fault):
    order = 1
    seen_as = '`error`, `detail: "HTTP 503"` (the status it sent); 502-504 are retried once first'

    kind: Literal["error"] = "error"
    status: int = Field(503, ge=400, le=599, description="HTTP status, 400-599")
    # 4,096 characters: within the admin body limit however a client escapes them.
    body: str | None = Field(
        None, max_length=4096, description="answer body; default a problem+json document"
    )
    content_type: str = Field(
        "application/json",
        max_length=200,
        # Printable ASCII: it becomes a header line of the shard's answer.
        pattern=r"^[!-~][ -~]*$",
        description="Content-Type of the answer when body is set",
    )
    retry_after_s: int | None = Field(
        None, ge=0, le=86400, description="Retry-After header, e.g. with 429 or 503"
    )
