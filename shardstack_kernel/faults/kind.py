"""`Fault`: the fields every kind shares. What a kind does to a request it fires on is
the shard's (shard_sim/effects/); a kind that acts on the shard's data listener rather
than on requests (`down`) sets `on_listener`.

Whether a fault fires on a request is decided shard by shard, unless it is correlated:
`k_of_n` fires it on exactly k of the shards it was injected on (`selection`, which the
gateway fills in), a different k on each request; `correlation` ties the shards'
decisions together (0: each its own; 1: all fire or none). shard_sim/decisions.py draws
them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Self

from pydantic import ConfigDict, Field, model_validator

from shardstack_kernel.faults.schedule import Schedule

FAULT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
FaultId = Annotated[str, Field(pattern=FAULT_ID_PATTERN)]
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]

# Fields that say which fault and when, not what it does.
COMMON_FIELDS = frozenset(
    {
        "kind",
        "id",
        "probability",
        "duration_s",
        "period_s",
        "on_s",
        "k_of_n",
        "correlation",
        "selection",
    }
)
MAX_SELECTION = 10_000


class Fault(Schedule):
    """Fields every kind has; a kind adds its parameters and overrides the hooks it needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Position in the documented order in which firing faults act on one request.
    order: ClassVar[int]
    # What the gateway reports for a call the fault fired on (the fault reference says it).
    seen_as: ClassVar[str]
    # Whether the kind makes sense for one request (the per-request fault header).
    per_request: ClassVar[bool] = True
    # Acts on the data listener while in effect, not on requests.
    on_listener: ClassVar[bool] = False

    kind: str
    id: FaultId | None = Field(None, description="name; generated when absent")
    probability: Probability = Field(1.0, description="chance the fault fires, per request")
    k_of_n: int | None = Field(
        None,
        ge=1,
        le=MAX_SELECTION,
        description="fires on exactly this many of the selected shards on each request "
        "(probability: the chance a request is hit at all)",
    )
    correlation: Probability = Field(
        0.0,
        description="0: each shard decides alone; 1: all selected shards fire together",
    )
    selection: tuple[Annotated[int, Field(ge=0)], ...] | None = Field(
        None,
        max_length=MAX_SELECTION,
        description="the shards k_of_n picks from; set by the gateway to the selected shards",
    )

    @model_validator(mode="after")
    def _correlated(self) -> Self:
        if self.on_listener and (self.k_of_n is not None or self.correlation):
            raise ValueError(
                f"k_of_n: {self.kind} acts on the listener, not per request; "
                "k_of_n and correlation do not apply"
            )
        if self.k_of_n is not None and self.correlation:
            raise ValueError(
                "correlation: does not apply with k_of_n (its k shards are chosen together)"
            )
        if self.selection is not None:
            if self.k_of_n is None:
                raise ValueError("selection: only with k_of_n")
            if len(set(self.selection)) != len(self.selection):
                raise ValueError("selection: a shard appears twice")
            if self.k_of_n > len(self.selection):
                raise ValueError(
                    f"k_of_n: {self.k_of_n} is more than the {len(self.selection)} selected shards"
                )
        return self

    @property
    def correlated(self) -> bool:
        """Its decision on one request depends on the other shards' (needs a request id)."""
        return self.k_of_n is not None or self.correlation > 0

    @classmethod
    def kind_name(cls) -> str:
        default = cls.model_fields["kind"].default
        assert isinstance(default, str), f"{cls.__name__}.kind needs a Literal default"
        return default

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
