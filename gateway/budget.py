"""A token bucket that caps extra shard calls (hedges, retries) at a fraction of all calls,
as Envoy's and Finagle's retry budgets do."""

from __future__ import annotations


class CallBudget:
    """Every call earns `ratio` of a token; an extra call spends one. So extra calls stay
    at most `ratio` x calls + `burst` over any stretch of time."""

    def __init__(self, ratio: float, burst: float = 20.0) -> None:
        self._ratio = ratio
        self._burst = burst
        self._tokens = burst

    def earn(self) -> None:
        self._tokens = min(self._burst, self._tokens + self._ratio)

    def try_spend(self) -> bool:
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
