"""Shard-call permits: a semaphore that reports its occupancy as it changes and sheds
load instead of queueing without bound.

Its own FIFO of waiting futures rather than `asyncio.Semaphore`: in Python 3.11 the
latter's `locked()` and `acquire()` scan every waiter, so with a thousand calls queued
each acquire cost a thousand steps (a fifth of a worker's time under overload, measured
with py-spy); here every step is O(1).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from gateway.metrics import GatewayMetrics
from gateway.overload import Overloaded, ShedReason

# Permits are handed on in bursts (a request's calls to equally fast shards end together),
# so the rate is counted over windows at least this long, then smoothed.
_RATE_WINDOW_S = 0.05
_RATE_SMOOTHING = 0.3
# Admission aims the queue at this share of the longest wait, so that the measured rate's
# noise seldom takes an admitted call past the limit (which sheds its request late).
_ADMIT_WAIT_SHARE = 0.5


class Permits:
    """One permit per shard call in flight; in use, waiting and the wait are exported.

    The gauges move with the semaphore rather than being sampled, so a scrape sees
    exactly how many calls hold a permit and how many queue for one.

    A request is admitted only if its calls could all get a permit well within
    `max_wait_s`: while calls queue, the rate at which permits pass to them is measured,
    and a request whose last call would wait longer than half of `max_wait_s` at that
    rate is shed at once, before it holds any permit. Shedding it later, after some of
    its calls ran, would spend capacity on an answer nobody gets.
    """

    def __init__(
        self, capacity: int, max_queued: int, max_wait_s: float, metrics: GatewayMetrics
    ) -> None:
        self._capacity = capacity
        # Waiting calls in arrival order; one that gave up stays until release skips it.
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._max_queued = max_queued
        self._max_wait_s = max_wait_s
        self._admit_wait_s = max_wait_s * _ADMIT_WAIT_SHARE
        self._held = 0
        self._queued = 0
        self._handoff_interval_s: float | None = None  # smoothed, while calls queue
        self._window_started: float | None = None
        self._window_handoffs = 0
        self._in_use = metrics.semaphore_in_use
        self._waiting = metrics.semaphore_waiting
        self._wait = metrics.semaphore_wait
        metrics.semaphore_capacity.set(capacity)

    def refusal(self, calls: int) -> ShedReason | None:
        """Why a request of `calls` calls would be shed now, or None if it is admitted."""
        free = 0 if self._queued else self._capacity - self._held
        would_queue = calls - free
        if would_queue <= 0:
            return None
        if self._queued + would_queue > self._max_queued:
            return ShedReason.QUEUE_FULL
        interval = self._handoff_interval_s
        if interval is not None and (self._queued + would_queue) * interval > self._admit_wait_s:
            return ShedReason.QUEUE_WAIT
        return None

    def admit(self, calls: int) -> float:
        """Admit a request of `calls` calls, or raise `Overloaded`. Return when its calls
        give up waiting for a permit, on the loop's clock."""
        reason = self.refusal(calls)
        if reason is not None:
            raise Overloaded(reason)
        return asyncio.get_running_loop().time() + self._max_wait_s

    async def acquire(self, give_up_at: float | None) -> None:
        """Hold one permit; `release` it. If none is free by `give_up_at` (on the loop's
        clock; None: wait as long as the caller's own timeout allows), raise `Overloaded`."""
        if not self.take_free():
            await self._queue(give_up_at)
            self._held += 1
            self._in_use.inc()

    def take_free(self) -> bool:
        """Hold a permit if one is free and no call waits for one (`release` it); else
        False, and the caller queues with `acquire`."""
        if self._queued or self._held >= self._capacity:
            return False
        self._wait.observe(0.0)
        self._held += 1
        self._in_use.inc()
        return True

    async def _queue(self, give_up_at: float | None) -> None:
        """Wait in line until `release` hands this call a permit."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        self._queued += 1
        self._waiting.inc()
        started = time.perf_counter()
        try:
            if give_up_at is None:
                await turn
            else:
                async with asyncio.timeout_at(give_up_at):
                    await turn
        except BaseException as exc:
            if turn.done() and not turn.cancelled():
                # Handed a permit as it gave up: pass it on (`_held` never counted it).
                self._pass_on()
            else:
                turn.cancel()
            if isinstance(exc, TimeoutError):
                raise Overloaded(ShedReason.PERMIT_WAIT) from None
            raise
        finally:
            self._queued -= 1
            self._waiting.dec()
            self._wait.observe(time.perf_counter() - started)

    async def try_acquire(self) -> bool:
        """Take a permit only if one is free now (a hedge never queues); `release` it."""
        if self._queued or self._held >= self._capacity:
            return False
        self._held += 1
        self._in_use.inc()
        return True

    def release(self) -> None:
        self._held -= 1
        self._in_use.dec()
        if self._pass_on():
            self._handed_off()
        else:
            self._window_started = None

    def _pass_on(self) -> bool:
        """Hand a free permit to the first call still waiting; False if none waits."""
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                return True
        return False

    def _handed_off(self) -> None:
        """A released permit passes to a queued call: measure how often that happens."""
        now = time.perf_counter()
        if self._window_started is None:
            self._window_started, self._window_handoffs = now, 0
            return
        self._window_handoffs += 1
        elapsed = now - self._window_started
        if elapsed >= _RATE_WINDOW_S:
            interval = elapsed / self._window_handoffs
            smoothed = self._handoff_interval_s
            if smoothed is not None:
                interval = smoothed + _RATE_SMOOTHING * (interval - smoothed)
            self._handoff_interval_s = interval
            self._window_started, self._window_handoffs = now, 0
