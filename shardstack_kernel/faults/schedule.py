"""When a fault is in effect: from the moment it is added, for `duration_s` if set, and,
with `period_s`, switched on for `on_s` of every period (a flap), starting on."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, Field, GetJsonSchemaHandler, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

# A week: long enough for any experiment, short enough that a typo is not forever.
MAX_DURATION_S = 7 * 24 * 3600.0

# A millisecond: the finest a duration is written (`1ms`) and a shard keeps time to.
MIN_DURATION_S = 0.001

Seconds = Annotated[float, Field(ge=MIN_DURATION_S, le=MAX_DURATION_S, allow_inf_nan=False)]


def _a_number(field: str) -> dict[str, Any]:
    return {"properties": {field: {"type": "number"}}, "required": [field]}


class Schedule(BaseModel):
    """The timing fields every fault kind carries."""

    duration_s: Seconds | None = Field(None, description="removes itself after this long")
    period_s: Seconds | None = Field(
        None, description="flaps: on for on_s of every period_s, starting on"
    )
    on_s: Seconds | None = Field(None, description="on part of each period; default half")

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # The one rule between the fields a JSON Schema can state, in every kind's schema
        # (a kind's own json_schema_extra does not replace it); the document says the
        # other. Not `dependentRequired`: null stands for absent, and it would let
        # `"period_s": null` pass.
        schema = handler.resolve_ref_schema(handler(core_schema))
        schema["if"] = _a_number("on_s")
        schema["then"] = _a_number("period_s")
        return schema

    @model_validator(mode="after")
    def _on_within_period(self) -> Self:
        if self.on_s is not None:
            if self.period_s is None:
                raise ValueError("on_s: needs period_s")
            if self.on_s >= self.period_s:
                raise ValueError(f"on_s: must be shorter than period_s ({self.period_s:g})")
        return self

    @property
    def flaps(self) -> bool:
        return self.period_s is not None

    def is_on(self, elapsed_s: float) -> bool:
        """Whether the fault is in effect `elapsed_s` after it was added."""
        if self.period_s is None:
            return True
        return elapsed_s % self.period_s < self._on_part_s(self.period_s)

    def next_toggle_s(self, elapsed_s: float) -> float | None:
        """Seconds from `elapsed_s` to the next change of `is_on`, if it ever changes."""
        if self.period_s is None:
            return None
        phase = elapsed_s % self.period_s
        on = self._on_part_s(self.period_s)
        return on - phase if phase < on else self.period_s - phase

    def _on_part_s(self, period_s: float) -> float:
        return self.on_s if self.on_s is not None else period_s / 2
