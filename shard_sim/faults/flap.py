"""`flap`: another fault switched on and off with a period, starting on."""

from __future__ import annotations

import random
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from shard_sim.faults.base import Answer, Fault, Seconds


class FlapFault(Fault):
    order = 0  # replaced by the wrapped fault's order when it fires
    per_request = False

    kind: Literal["flap"] = "flap"
    period_s: Seconds = Field(description="one on-off cycle")
    on_s: Seconds | None = Field(None, description="on part of each cycle; default half")
    fault: Fault = Field(description="the fault switched on and off (any kind but flap)")

    @field_validator("fault", mode="before")
    @classmethod
    def _inner(cls, value: Any) -> Fault:
        from shard_sim.faults import parse_fault

        if isinstance(value, Fault):
            return value
        inner = parse_fault(value)
        if isinstance(inner, FlapFault):
            raise ValueError("a flap cannot wrap another flap")
        if inner.id is not None or inner.duration_s is not None:
            raise ValueError("id and duration_s belong on the flap, not on the fault it wraps")
        return inner

    @field_validator("on_s")
    @classmethod
    def _on_within_period(cls, on_s: float | None, info: ValidationInfo) -> float | None:
        period_s = info.data.get("period_s")
        if on_s is not None and period_s is not None and on_s >= period_s:
            raise ValueError(f"must be shorter than period_s ({period_s:g})")
        return on_s

    @property
    def _on_part_s(self) -> float:
        return self.on_s if self.on_s is not None else self.period_s / 2

    def is_on(self, elapsed_s: float) -> bool:
        return elapsed_s % self.period_s < self._on_part_s

    def next_toggle_s(self, elapsed_s: float) -> float:
        phase = elapsed_s % self.period_s
        on = self._on_part_s
        return on - phase if phase < on else self.period_s - phase

    def effective_order(self) -> int:
        return self.fault.order

    def effective_kind(self) -> str:
        return self.fault.kind

    def acts_on_requests(self) -> bool:
        return self.fault.acts_on_requests()

    def chance(self) -> float:
        return self.probability * self.fault.probability

    def delay_s(self, rng: random.Random) -> float:
        return self.fault.delay_s(rng)

    def shape(self, answer: Answer, rng: random.Random) -> bool:
        return self.fault.shape(answer, rng)

    def holds_listener_down(self, elapsed_s: float) -> bool:
        return self.fault.holds_listener_down(elapsed_s) and self.is_on(elapsed_s)

    def compact(self) -> dict[str, Any]:
        return {**super().compact(), "fault": self.fault.compact()}

    def params(self) -> dict[str, object]:
        params = super().params()
        inner: dict[str, object] = {"kind": self.fault.kind, **self.fault.params()}
        if self.fault.probability != 1:
            inner["probability"] = self.fault.probability
        params["fault"] = inner
        return params
