"""An adaptive cap on a worker's aggregates in flight, steered by its event loop's lag.

When the shards are the limit, the permits see the queue (gateway/permits.py). When the
worker's own CPU is, they see none: every admitted aggregate shares one event loop, and
each `await` waits behind everything else that is ready, so all of them slow down
together and finish past their deadlines. The loop's lag (how late a timer fires) is that
wait, measured directly, as Node's toobusy measures it. Every window the limit follows
it, additive-increase / multiplicative-decrease: a window whose mean lag is over the
target cuts the limit by a third; one well under it raises the limit by a tenth, up to
`GATEWAY_MAX_AGGREGATES_IN_FLIGHT`, from 8 at the worker's start. It never falls below
those 8: a loop that lags with fewer aggregates in flight lags for another reason (a
collection, a burst of new connections, a neighbour on the CPU), and shedding the few
in flight would refuse answers the worker gives in time; past a storm's first moments
the door's pacing (gateway/front_door.py) is what keeps such a loop's work bounded.
"""

from __future__ import annotations

import asyncio
import time

from gateway.metrics import GatewayMetrics

_FLOOR = 8
_PROBE_S = 0.01
_PROBES_PER_WINDOW = 10
_DECREASE = 0.67
_INCREASE = 0.1


class CpuLimit:
    """`limit` aggregates in flight at most, between 8 (or `ceiling`, if lower) and
    `ceiling`; `run` steers it."""

    def __init__(self, ceiling: int, target_lag_s: float, metrics: GatewayMetrics) -> None:
        self.ceiling = ceiling
        # A slow start, as TCP's: a worker that starts under a storm has no lag measured yet.
        self._floor = float(min(ceiling, _FLOOR))
        self.limit = self._floor
        self._target_lag_s = target_lag_s
        self._limit_gauge = metrics.admission_limit
        self._lag_gauge = metrics.event_loop_lag
        self._limit_gauge.set(int(self.limit))

    def window(self, mean_lag_s: float) -> None:
        """One window's mean lag: move the limit."""
        if mean_lag_s > self._target_lag_s:
            self.limit = max(self._floor, self.limit * _DECREASE)
        elif mean_lag_s < self._target_lag_s / 2:
            self.limit = min(float(self.ceiling), self.limit + max(1.0, self.limit * _INCREASE))
        self._limit_gauge.set(int(self.limit))
        self._lag_gauge.set(mean_lag_s)

    async def run(self) -> None:
        """Probe the loop every 10 ms, for the worker's lifetime (the lifespan's task)."""
        while True:
            late_s = 0.0
            for _ in range(_PROBES_PER_WINDOW):
                due = time.perf_counter() + _PROBE_S
                await asyncio.sleep(_PROBE_S)
                late_s += max(0.0, time.perf_counter() - due)
            self.window(late_s / _PROBES_PER_WINDOW)
