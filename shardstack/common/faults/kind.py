"""`Fault`: the fields every kind shares and the two hooks the shard calls for every
request the fault fires on.

- `delay_s(rng)`: seconds added before the answer (latency faults add up);
- `shape(answer, rng)`: change the answer's content, or take over its delivery
  (at most one fault delivers an answer; see `Answer.take_delivery`).

A kind that acts on the shard's data listener rather than on requests (`down`) sets
`on_listener` and needs neither hook.
"""

from __future__ import annotations

import json
import random
from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, Field

from shardstack.common.faults.answer import Answer
from shardstack.common.faults.schedule import Schedule

FAULT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
FaultId = Annotated[str, Field(pattern=FAULT_ID_PATTERN)]
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]

# Fields that say which fault and when, not what it does.
COMMON_FIELDS = frozenset({"kind", "id", "probability", "duration_s", "period_s", "on_s"})


class Fault(Schedule):
    """Fields every kind has; a kind adds its parameters and overrides the hooks it needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Position in the documented order in which firing faults act on one request.
    order: ClassVar[int]
    # Whether the kind makes sense for one request (the per-request fault header).
    per_request: ClassVar[bool] = True
    # Acts on the data listener while in effect, not on requests.
    on_listener: ClassVar[bool] = False

    kind: str
    id: FaultId | None = Field(None, description="name; generated when absent")
    probability: Probability = Field(1.0, description="chance the fault fires, per request")

    @classmethod
    def kind_name(cls) -> str:
        default = cls.model_fields["kind"].default
        assert isinstance(default, str), f"{cls.__name__}.kind needs a Literal default"
        return default

    def delay_s(self, rng: random.Random) -> float:
        return 0.0

    def shape(self, answer: Answer, rng: random.Random) -> bool:
        """Act on `answer`; False when the fault could not act (delivery already taken)."""
        return True

    def compact(self) -> dict[str, Any]:
        """The fault as JSON with only what differs from the defaults (and its kind): the
        form sent to shards and shown to people."""
        dumped = self.model_dump(mode="json", serialize_as_any=True, exclude_defaults=True)
        return {"kind": self.kind, **dumped}

    def words(self) -> str:
        """The `KIND key=value ...` form the CLI and the request header use."""
        return " ".join(
            [self.kind]
            + [
                f"{key}={value if isinstance(value, str) else _compact_json(value)}"
                for key, value in self.compact().items()
                if key not in {"kind", "id", "duration_s"}
            ]
        )

    def params(self) -> dict[str, object]:
        """The kind's own parameters, as they would be written in a request."""
        return {
            key: value
            for key, value in self.model_dump(mode="json").items()
            if key not in COMMON_FIELDS
        }


def _compact_json(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # `period_s=10`, as a person writes it
    return json.dumps(value, separators=(",", ":"))
