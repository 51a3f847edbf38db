"""Every answer of the gateway's API, declared once as a model: the routes name them in
`responses=`, and the OpenAPI document is generated from them (gateway/openapi.py adds
what only the deployment knows, such as the highest shard id).

The routes do not build these models: they answer with orjson bytes of the same shape,
measured faster than a response model on the aggregate's path
(benchmarks/response_serialization.py). That the bytes keep to the models is checked
by schemathesis against a running stack (tests/e2e/test_openapi.py) and by the routes'
tests (tests/gateway/test_answers.py).

A field that may be absent is never null unless it says so: `SkipJsonSchema[None]`
keeps Python's default out of the document.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, RootModel
from pydantic.json_schema import SkipJsonSchema

from gateway.results import AggregateStatus, ShardOutcome
from shardstack_kernel.faults import FAULT_ID_PATTERN
from shardstack_kernel.problem import Problem


class ShardId(RootModel[Annotated[int, Field(ge=0)]]):
    """A shard's id; the document says this gateway's highest."""


Ms = Annotated[float, Field(ge=0)]
FaultId = Annotated[str, Field(pattern=FAULT_ID_PATTERN)]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShardEntry(_Answer):
    """One shard's part of an aggregate."""

    shard: ShardId
    zone: str | SkipJsonSchema[None] = None
    status: ShardOutcome
    latency_ms: Ms
    headers_ms: Ms | SkipJsonSchema[None] = Field(None, description="time to the headers")
    served_ms: Ms | SkipJsonSchema[None] = Field(None, description="the shard's own time")
    injected_ms: Ms | SkipJsonSchema[None] = Field(
        None, description="the delay the shard says it injected"
    )
    records: NonNegativeInt | SkipJsonSchema[None] = None
    detail: str | SkipJsonSchema[None] = None
    attempts: Annotated[int, Field(ge=2)] | SkipJsonSchema[None] = None
    data: Any = Field(None, description="the shard's records, with ?data=true")


class Aggregate(_Answer):
    status: Literal[AggregateStatus.COMPLETE, AggregateStatus.PARTIAL, AggregateStatus.FAILED]
    ok: NonNegativeInt
    failed: NonNegativeInt
    elapsed_ms: Ms
    timeout_ms: PositiveInt
    request_id: str
    shards: list[ShardEntry]


class Health(_Answer):
    status: Literal["ok"]
    pid: int


class ZoneMismatch(_Answer):
    shard: ShardId
    gateway: str
    shard_says: str | None


class Readiness(_Answer):
    status: Literal["ready", "not_ready"]
    shards: NonNegativeInt
    down: list[ShardId]
    zones: list[str | None] | SkipJsonSchema[None] = None
    zone_mismatch: list[ZoneMismatch] | SkipJsonSchema[None] = None


class ActiveFault(BaseModel):
    """A fault as a shard holds it: its kind's parameters and its state."""

    model_config = ConfigDict(extra="allow")

    id: FaultId
    kind: str
    probability: Annotated[float, Field(ge=0, le=1)]
    duration_s: float | None
    remaining_s: Ms | None
    on: bool
    applied: NonNegativeInt


class ShardFailed(_Answer):
    """A shard that did not do what was asked, and why."""

    shard: ShardId
    status: Literal["failed"]
    detail: str


class FaultAddedOn(_Answer):
    shard: ShardId
    status: Literal["added"]
    fault: ActiveFault


class FaultsOn(_Answer):
    shard: ShardId
    status: Literal["ok"]
    faults: list[ActiveFault]


class ClearedOn(_Answer):
    shard: ShardId
    status: Literal["cleared"]


class FaultAdded(_Answer):
    id: FaultId
    kind: str
    shards: list[Annotated[FaultAddedOn | ShardFailed, Field(discriminator="status")]]


class FaultListing(_Answer):
    active: NonNegativeInt
    shards: list[Annotated[FaultsOn | ShardFailed, Field(discriminator="status")]]


class FaultsCleared(_Answer):
    cleared: NonNegativeInt
    shards: list[Annotated[ClearedOn | ShardFailed, Field(discriminator="status")]]


class FaultRemoved(_Answer):
    id: FaultId
    removed_from: list[ShardId]
    failed: list[ShardFailed]


class ScenarioText(_Answer):
    text: str = Field(description="the scenario file's YAML")


class PlannedStep(_Answer):
    number: PositiveInt
    at_s: Annotated[float, Field(ge=0)]
    shards: list[ShardId]
    fault: dict[str, Any]
    description: str


class ScenarioPlan(_Answer):
    name: str
    seed: int
    end_s: Annotated[float, Field(ge=0)]
    steps: list[PlannedStep]


def answer(model: type[BaseModel], description: str, **extra: Any) -> dict[str, Any]:
    """A `responses=` entry of a JSON answer; `extra` as OpenAPI has it (headers, links)."""
    return {"model": model, "description": description, **extra}


def problem(description: str, **extra: Any) -> dict[str, Any]:
    """A `responses=` entry of a problem (application/problem+json, gateway/openapi.py)."""
    return answer(Problem, description, **extra)


RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}
REQUEST_ID_HEADER = {
    "X-Request-Id": {
        "description": "the aggregate's id: the one sent, or a new one",
        "required": True,
        "schema": {"type": "string"},
    }
}
