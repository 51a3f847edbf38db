"""Hedged shard calls ("The Tail at Scale", Dean and Barroso, 2013): when a shard has not
answered by its own recent p95, send the same call again and take whichever answers
first. A budget (gateway/budget.py) caps the extra calls at a fraction of all calls.

Our own small code: no asyncio library offers hedging, and the rolling quantile per
shard is a few lines.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable

from gateway.budget import CallBudget
from gateway.metrics import GatewayMetrics
from gateway.permits import Permits


class LatencyTracker:
    """One shard's recent answer times and the quantile to hedge after.

    The quantile is recomputed every `refresh_every` observations from the last
    `window`, and is None until `min_samples` answers have been seen.
    """

    def __init__(
        self, quantile: float, window: int = 512, refresh_every: int = 32, min_samples: int = 50
    ) -> None:
        self._quantile = quantile
        self._samples: deque[float] = deque(maxlen=window)
        self._refresh_every = refresh_every
        self._min_samples = min_samples
        self._until_refresh = refresh_every
        self.threshold_s: float | None = None

    def observe(self, seconds: float) -> None:
        self._samples.append(seconds)
        self._until_refresh -= 1
        if self._until_refresh <= 0:
            self._until_refresh = self._refresh_every
            if len(self._samples) >= self._min_samples:
                ordered = sorted(self._samples)
                self.threshold_s = ordered[
                    min(len(ordered) - 1, int(self._quantile * len(ordered)))
                ]


class LoserFate(enum.Enum):
    ENDED = "ended"  # over before the other call answered (it failed)
    FINISHED = "finished"  # ran on after the answer, to its end
    CUT = "cut"  # still running at its deadline: cancelled


class Hedging:
    """Per worker: each shard's threshold, one budget, and the hedge counters."""

    def __init__(
        self, shard_ids: Iterable[int], quantile: float, budget: float, metrics: GatewayMetrics
    ) -> None:
        self._trackers = {shard_id: LatencyTracker(quantile) for shard_id in shard_ids}
        self._budget = CallBudget(budget)
        self._metrics = metrics

    def threshold_s(self, shard_id: int) -> float | None:
        return self._trackers[shard_id].threshold_s

    def called(self, shard_id: int, ok: bool, seconds: float) -> None:
        """Every call earns budget; answers that came back ok teach the threshold."""
        self._budget.earn()
        if ok:
            self._trackers[shard_id].observe(seconds)

    async def permit(self, permits: Permits) -> bool:
        """Whether a hedge may go: it needs a permit free now (taken: the caller releases
        it) and budget."""
        if not await permits.try_acquire():
            self._metrics.hedges_denied.inc()
            return False
        if not self._budget.try_spend():
            permits.release()
            self._metrics.hedges_denied.inc()
            return False
        self._metrics.hedges_sent.inc()
        return True

    def lost(self, fate: LoserFate) -> None:
        {
            LoserFate.ENDED: self._metrics.hedge_losers_ended,
            LoserFate.FINISHED: self._metrics.hedge_losers_finished,
            LoserFate.CUT: self._metrics.hedge_losers_cut,
        }[fate].inc()

    def won(self) -> None:
        self._metrics.hedges_won.inc()
