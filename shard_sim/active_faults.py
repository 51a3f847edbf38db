"""The faults active on one shard: added, listed, expired and rolled for each request."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shard_sim.decisions import Decisions
from shardstack_kernel.faults import Fault
from shardstack_kernel.validation import Conflict, InvalidInput

MAX_ACTIVE_FAULTS = 100


@dataclass(slots=True)
class ActiveFault:
    id: str
    fault: Fault
    added_at: float
    expires_at: float | None
    rng: random.Random
    applied: int = 0

    def as_dict(self, now: float) -> dict[str, Any]:
        remaining = None if self.expires_at is None else max(self.expires_at - now, 0.0)
        return {
            "id": self.id,
            "kind": self.fault.kind,
            **self.fault.params(),
            "probability": self.fault.probability,
            **self._correlation(),
            "duration_s": self.fault.duration_s,
            "remaining_s": None if remaining is None else round(remaining, 3),
            "on": self.fault.is_on(now - self.added_at),
            "applied": self.applied,
        }

    def _correlation(self) -> dict[str, Any]:
        fault = self.fault
        if fault.k_of_n is not None:
            return {"k_of_n": fault.k_of_n, "selection": list(fault.selection or ())}
        return {"correlation": fault.correlation} if fault.correlation else {}


@dataclass(slots=True)
class ActiveFaults:
    """Each fault rolls its own RNG, seeded by (seed, shard, fault id), so the same faults
    under the same requests fire the same way in every run."""

    seed: int
    shard_id: int
    clock: Callable[[], float] = time.monotonic
    _faults: dict[str, ActiveFault] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, fault: Fault) -> ActiveFault:
        if fault.k_of_n is not None and fault.selection is None:
            raise InvalidInput.field(
                "selection",
                "needed with k_of_n: the shards it picks from (the gateway sets it to the "
                "shards the fault is injected on)",
            )
        if fault.selection is not None and self.shard_id not in fault.selection:
            raise InvalidInput.field(
                "selection", f"does not hold this shard ({self.shard_id}): it would never fire"
            )
        now = self.clock()
        self._expire(now)
        fault_id = fault.id or self._new_id(fault.kind)
        if fault_id in self._faults:
            raise Conflict(f"id: a fault {fault_id!r} is already active on this shard")
        if len(self._faults) >= MAX_ACTIVE_FAULTS:
            raise Conflict(f"this shard already has {MAX_ACTIVE_FAULTS} active faults")
        active = ActiveFault(
            id=fault_id,
            fault=fault,
            added_at=now,
            expires_at=None if fault.duration_s is None else now + fault.duration_s,
            rng=random.Random(f"shardstack:{self.seed}:{self.shard_id}:{fault_id}"),
        )
        self._faults[fault_id] = active
        return active

    def remove(self, fault_id: str) -> bool:
        self._expire(self.clock())
        return self._faults.pop(fault_id, None) is not None

    def clear(self) -> int:
        self._expire(self.clock())
        count = len(self._faults)
        self._faults.clear()
        return count

    def listing(self) -> list[dict[str, Any]]:
        now = self.clock()
        self._expire(now)
        return [active.as_dict(now) for active in self._faults.values()]

    def firing(self, decisions: Decisions | None = None) -> list[tuple[ActiveFault, random.Random]]:
        """The faults that act on this request, in the documented order, each with the
        stream its delay and shape draw from (no `decisions`: a request with no id)."""
        if not self._faults:
            return []
        if decisions is None:
            decisions = Decisions(self.seed, self.shard_id, None, 0)
        now = self.clock()
        self._expire(now)
        fired = []
        for active in self._faults.values():
            fault = active.fault
            if fault.on_listener or not fault.is_on(now - active.added_at):
                continue
            rng = decisions.stream(active.id, active.rng)
            if decisions.fires(fault, active.id, rng, self.shard_id):
                fired.append((active, rng))
        fired.sort(key=lambda entry: entry[0].fault.order)
        return fired

    def listener_down(self) -> bool:
        now = self.clock()
        self._expire(now)
        return any(
            active.fault.on_listener and active.fault.is_on(now - active.added_at)
            for active in self._faults.values()
        )

    def seconds_to_next_change(self) -> float | None:
        """Until the next expiry or flap toggle, the moments the listener may change."""
        now = self.clock()
        moments = []
        for active in self._faults.values():
            if active.expires_at is not None:
                moments.append(active.expires_at - now)
            toggle = active.fault.next_toggle_s(now - active.added_at)
            if toggle is not None:
                moments.append(toggle)
        return max(min(moments), 0.0) if moments else None

    def _expire(self, now: float) -> None:
        expired = [
            fault_id
            for fault_id, active in self._faults.items()
            if active.expires_at is not None and active.expires_at <= now
        ]
        for fault_id in expired:
            del self._faults[fault_id]

    def _new_id(self, kind: str) -> str:
        while True:
            candidate = f"{kind}-{next(self._counter)}"
            if candidate not in self._faults:
                return candidate
