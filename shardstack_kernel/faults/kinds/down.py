"""`down`: the shard stops listening on its data port (connections are refused) while the
fault is in effect; open connections are cut. The admin port stays up, so it can be undone."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, field_validator

from shardstack_kernel.faults.kind import Fault


def _whole_listener_schema(schema: dict[str, Any]) -> None:
    """What the validators below refuse, stated in the kind's JSON Schema."""
    properties = schema["properties"]
    properties["probability"] = {**properties["probability"], "minimum": 1}
    properties["correlation"] = {**properties["correlation"], "maximum": 0}
    properties["k_of_n"] = {"type": "null", "description": "does not apply to down"}


class DownFault(Fault):
    model_config = ConfigDict(json_schema_extra=_whole_listener_schema)

    order = 0
    per_request = False
    on_listener = True
    seen_as = (
        "`unreachable`: the data port is closed and its open connections cut until the fault ends"
    )

    kind: Literal["down"] = "down"

    @field_validator("probability")
    @classmethod
    def _whole_listener(cls, probability: float) -> float:
        if probability != 1:
            raise ValueError("down acts on the listener, not on single requests; leave it at 1")
        return probability
