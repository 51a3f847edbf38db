"""Retrying a failed shard call: only when it is safe, within a budget, before the deadline.

Safe: a shard's /data is a read, so sending it again changes nothing, and the failures
retried are the ones a second try can fix: no connection (the call never arrived), a
broken connection, or a 502/503/504 from something in the way. A timeout is not retried
(the call already spent its time) nor is a shard's own answer that it failed.

Our own few lines rather than tenacity or stamina: a call is tried at most twice, and
the check runs on every call of the hot path, where those libraries would wrap each call
in their retry machinery for a loop that almost never runs a second time.
"""

from __future__ import annotations

from gateway.budget import CallBudget
from gateway.metrics import GatewayMetrics

RETRYABLE_STATUSES = frozenset({502, 503, 504})


class Retries:
    """Per worker: one budget for retries across all shards, and their counters."""

    def __init__(self, budget: float, metrics: GatewayMetrics) -> None:
        self._budget = CallBudget(budget)
        self._metrics = metrics

    def called(self) -> None:
        self._budget.earn()

    def may_retry(self, time_left_s: float) -> bool:
        if time_left_s <= 0:
            return False
        if self._budget.try_spend():
            self._metrics.retries_sent.inc()
            return True
        self._metrics.retries_denied.inc()
        return False
