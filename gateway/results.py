"""What a fan-out produces: one `ShardResult` per shard, summed up into an aggregate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ShardOutcome(StrEnum):
    OK = "ok"
    TIMEOUT = "timeout"  # no answer within the shard timeout or the aggregate's deadline
    ERROR = "error"  # an answer, but not a usable one: non-2xx status or a malformed body
    RESET = "reset"  # the connection broke mid-exchange
    UNREACHABLE = "unreachable"  # no connection could be made
    CIRCUIT_OPEN = "circuit_open"  # not called: its breaker is open (gateway/breaker.py)
    SHED = "shed"  # not called: no permit came in time, so the request is shed (503)
    THROTTLED = "throttled"  # not called: refused here, the shard is refusing (gateway/throttle.py)


class AggregateStatus(StrEnum):
    COMPLETE = "complete"
    PARTIAL = "partial"
    FAILED = "failed"
    SHED = "shed"  # answered 503 at once: the gateway is past its capacity


@dataclass(slots=True)
class ShardResult:
    shard: int
    status: ShardOutcome
    latency_ms: float
    # Time to the response headers: with `latency_ms`, tells a slow body from a slow answer.
    headers_ms: float | None = None
    # The shard's own time for the answer (its Server-Timing total), when it said.
    served_ms: float | None = None
    # The delay the shard says it injected (its Server-Timing delay), when it said.
    injected_ms: float | None = None
    records: int | None = None
    detail: str | None = None
    data: Any = None
    attempts: int = 1
    # The failure is one a second try can fix (gateway/retries.py).
    retryable: bool = False
    # The shard refused the request itself (a 4xx but 408 and 429): it says nothing of
    # the shard's health, so breakers and throttles do not count it against the shard.
    refused_request: bool = False

    def as_dict(self, with_data: bool, zone: str | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {"shard": self.shard}
        if zone is not None:
            entry["zone"] = zone
        entry["status"] = self.status
        entry["latency_ms"] = round(self.latency_ms, 3)
        if self.headers_ms is not None:
            entry["headers_ms"] = round(self.headers_ms, 3)
        if self.served_ms is not None:
            entry["served_ms"] = round(self.served_ms, 3)
        if self.injected_ms is not None:
            entry["injected_ms"] = round(self.injected_ms, 3)
        if self.records is not None:
            entry["records"] = self.records
        if self.detail is not None:
            entry["detail"] = self.detail
        if self.attempts > 1:
            entry["attempts"] = self.attempts
        if with_data and self.data is not None:
            entry["data"] = self.data
        return entry


def aggregate_status(results: Sequence[ShardResult], min_ok: int) -> AggregateStatus:
    ok = sum(result.status is ShardOutcome.OK for result in results)
    if ok < min_ok:
        return AggregateStatus.FAILED
    return AggregateStatus.COMPLETE if ok == len(results) else AggregateStatus.PARTIAL
