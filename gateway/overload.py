"""Load shedding's error: a request the gateway answers 503 at once rather than queue."""

from __future__ import annotations

from enum import StrEnum

RETRY_AFTER_S = 1


class ShedReason(StrEnum):
    IN_FLIGHT = "in_flight"  # the worker already has GATEWAY_MAX_AGGREGATES_IN_FLIGHT
    CPU = "cpu"  # its event loop lags: the adaptive limit (gateway/cpu_limit.py) is reached
    QUEUE_FULL = "queue_full"  # its calls would take the permit queue past its depth
    QUEUE_WAIT = "queue_wait"  # at the rate permits free up, its calls would wait too long
    PERMIT_WAIT = "permit_wait"  # a call waited for a permit longer than allowed


class Overloaded(Exception):
    """The request is shed: answered with 503 and Retry-After, not queued."""

    def __init__(self, reason: ShedReason) -> None:
        super().__init__(_EXPLAINED[reason])
        self.reason = reason


_EXPLAINED = {
    ShedReason.IN_FLIGHT: "over capacity: this worker has GATEWAY_MAX_AGGREGATES_IN_FLIGHT "
    "aggregates in progress; retry later",
    ShedReason.CPU: "over capacity: this worker's CPU is the limit (its event loop lags "
    "past GATEWAY_LOOP_LAG_TARGET_MS); retry later",
    ShedReason.QUEUE_FULL: "over capacity: its shard calls would queue past "
    "GATEWAY_MAX_QUEUED_CALLS; retry later",
    ShedReason.QUEUE_WAIT: "over capacity: at the rate permits free up, its shard calls "
    "would wait more than half of GATEWAY_PERMIT_WAIT_MS; retry later",
    ShedReason.PERMIT_WAIT: "over capacity: no shard-call permit within "
    "GATEWAY_PERMIT_WAIT_MS; retry later",
}
