"""What a fleet's control methods return: frozen values, each read from a shard's own
admin API answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Shard:
    """One shard of a fleet: its data port (`GET {url}/data`) and admin port."""

    id: int
    url: str
    admin_url: str
    zone: str | None = None


@dataclass(frozen=True, slots=True)
class InjectedFault:
    """A fault added to every shard the selector named, under one id."""

    id: str
    kind: str
    shards: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ActiveFault:
    id: str
    kind: str
    # None: until removed.
    remaining_s: float | None
    # False while a flapping fault is in its off part.
    on: bool
    # How many requests it acted on.
    applied: int
    # Everything the shard lists for it: the kind's parameters, probability, schedule.
    fields: dict[str, Any]

    @classmethod
    def from_listing(cls, listed: dict[str, Any]) -> ActiveFault:
        return cls(
            id=listed["id"],
            kind=listed["kind"],
            remaining_s=listed["remaining_s"],
            on=listed["on"],
            applied=listed["applied"],
            fields=listed,
        )


@dataclass(frozen=True, slots=True)
class RecentRequest:
    request_id: str | None
    attempt: int


@dataclass(frozen=True, slots=True)
class Received:
    """What one shard's data port took since the fleet's last reset."""

    calls: int
    # The last 64 at most, oldest first.
    recent: tuple[RecentRequest, ...]

    @property
    def request_ids(self) -> tuple[str | None, ...]:
        return tuple(request.request_id for request in self.recent)

    @classmethod
    def from_answer(cls, body: dict[str, Any]) -> Received:
        recent = tuple(
            RecentRequest(item["request_id"], item["attempt"]) for item in body["recent"]
        )
        return cls(body["calls"], recent)


@dataclass(frozen=True, slots=True)
class Decision:
    """One line of the decision log: what a shard decided for one request."""

    request_id: str | None
    shard: int
    attempt: int
    delay_ms: float
    # The ids of the faults that acted (`request` for a request's own).
    faults: tuple[str, ...]
