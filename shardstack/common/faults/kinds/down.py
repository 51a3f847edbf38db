"""`down`: the shard stops listening on its data port (connections are refused) while the
fault is in effect; open connections are cut. The admin port stays up, so it can be undone."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from shardstack.common.faults.kind import Fault


class DownFault(Fault):
    order = 0
    per_request = False
    on_listener = True

    kind: Literal["down"] = "down"

    @field_validator("probability")
    @classmethod
    def _whole_listener(cls, probability: float) -> float:
        if probability != 1:
            raise ValueError("down acts on the listener, not on single requests; leave it at 1")
        return probability
