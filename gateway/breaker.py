"""Per-shard circuit breakers: a shard that keeps failing is skipped, then probed back in.

closed ── `failures` failures in a row ──> open ── `open_s` later ──> half-open
half-open: one call goes through as a probe, the others are skipped; the probe's
success closes the breaker, its failure opens it again.

Our own small code rather than purgatory or aiobreaker: this check runs on every shard
call, so it is synchronous and allocation-free, while purgatory passes each call through
a message bus and a unit of work with several awaits, and lets every call through when
half-open (a recovering shard would get the whole burst, not one probe). Failures here
are call outcomes, not exceptions, which neither library takes directly.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from enum import StrEnum

from prometheus_client import Gauge


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """One shard's breaker in one worker. `allow()` before a call; if it says yes, exactly
    one `record()` or `abandon()` after it."""

    def __init__(self, failures: int, open_s: float, states: Gauge, shard_id: int) -> None:
        self.skip_detail = f"skipped: {failures} failures in a row; probed again after {open_s:g}s"
        self._threshold = failures
        self._open_s = open_s
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._gauges = {state: states.labels(str(shard_id), state.value) for state in BreakerState}
        self.state = BreakerState.CLOSED
        self._gauges[self.state].inc()

    def allow(self) -> bool:
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            if time.monotonic() - self._opened_at < self._open_s:
                return False
            self._move(BreakerState.HALF_OPEN)
        if self._probing:
            return False
        self._probing = True
        return True

    def record(self, ok: bool) -> None:
        if self.state is BreakerState.HALF_OPEN:
            self._probing = False
            if ok:
                self._failures = 0
                self._move(BreakerState.CLOSED)
            else:
                self._open()
            return
        if ok:
            self._failures = 0
            return
        self._failures += 1
        if self.state is BreakerState.CLOSED and self._failures >= self._threshold:
            self._open()

    def abandon(self) -> None:
        """The call `allow()` let through ended with no verdict (it was cancelled)."""
        self._probing = False

    def _open(self) -> None:
        self._opened_at = time.monotonic()
        self._move(BreakerState.OPEN)

    def _move(self, state: BreakerState) -> None:
        self._gauges[self.state].dec()
        self.state = state
        self._gauges[state].inc()


class Breakers:
    """Every shard's breaker in this worker."""

    def __init__(
        self, shard_ids: Iterable[int], failures: int, open_s: float, states: Gauge
    ) -> None:
        self._breakers = {
            shard_id: CircuitBreaker(failures, open_s, states, shard_id) for shard_id in shard_ids
        }

    def __getitem__(self, shard_id: int) -> CircuitBreaker:
        return self._breakers[shard_id]
