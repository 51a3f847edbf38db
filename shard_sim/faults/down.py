"""`down`: the shard stops listening on its data port (connections are refused) until the
fault ends; open connections are cut. The admin port stays up, so it can be undone."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from shard_sim.faults.base import Fault


class DownFault(Fault):
    order = -1
    per_request = False

    kind: Literal["down"] = "down"

    def acts_on_requests(self) -> bool:
        return False

    def holds_listener_down(self, elapsed_s: float) -> bool:
        return True

    @field_validator("probability")
    @classmethod
    def _whole_listener(cls, probability: float) -> float:
        if probability != 1:
            raise ValueError("down acts on the listener, not on single requests; leave it at 1")
        return probability
