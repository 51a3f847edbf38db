"""`latency`: extra delay before the answer, from any latency model, plus uniform jitter."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, field_serializer

from shardstack_kernel.faults.kind import Fault
from shardstack_kernel.latency import LATENCY_SPEC_SCHEMA, LatencyModel, Millis, parse_latency_spec


class LatencyFault(Fault):
    order = 0
    seen_as = "a slower `ok`, or `timeout` if the delay passes the call's deadline"

    kind: Literal["latency"] = "latency"
    latency: Annotated[
        LatencyModel, BeforeValidator(parse_latency_spec), WithJsonSchema(LATENCY_SPEC_SCHEMA)
    ] = Field(
        description="model of the added delay, e.g. fixed:200 or lognormal:5,80",
        json_schema_extra={"description": f"the added delay: {LATENCY_SPEC_SCHEMA['description']}"},
    )
    jitter_ms: Millis = Field(0.0, description="plus or minus this much, uniformly")

    @field_serializer("latency")
    def _compact(self, latency: LatencyModel) -> str:
        return latency.spec()
