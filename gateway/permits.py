"""Shard-call permits: an `asyncio.Semaphore` that reports its occupancy as it changes and
sheds load instead of queueing without bound."""

from __future__ import annotations

import asyncio
import time

from gateway.metrics import GatewayMetrics
from gateway.overload import Overloaded, ShedReason


class Permits:
    """One permit per shard call in flight; in use, waiting and the wait are exported.

    The gauges move with the semaphore rather than being sampled, so a scrape sees
    exactly how many calls hold a permit and how many queue for one.
    """

    def __init__(self, capacity: int, max_queued: int, metrics: GatewayMetrics) -> None:
        self._semaphore = asyncio.Semaphore(capacity)
        self._capacity = capacity
        self._max_queued = max_queued
        self._held = 0
        self._queued = 0
        self._in_use = metrics.semaphore_in_use
        self._waiting = metrics.semaphore_waiting
        self._wait = metrics.semaphore_wait
        metrics.semaphore_capacity.set(capacity)

    def admit(self, calls: int) -> None:
        """Raise `Overloaded` if `calls` more calls would queue past the queue's depth."""
        free = 0 if self._queued else self._capacity - self._held
        would_queue = calls - free
        if would_queue > 0 and self._queued + would_queue > self._max_queued:
            raise Overloaded(ShedReason.QUEUE_FULL)

    async def acquire(self, give_up_at: float | None) -> None:
        """Hold one permit; `release` it. If none is free by `give_up_at` (on the loop's
        clock; None: wait as long as the caller's own timeout allows), raise `Overloaded`."""
        if not self._semaphore.locked():
            # Acquiring a free permit does not yield, so nothing can see a call waiting.
            await self._semaphore.acquire()
            self._wait.observe(0.0)
        else:
            self._queued += 1
            self._waiting.inc()
            started = time.perf_counter()
            try:
                if give_up_at is None:
                    await self._semaphore.acquire()
                else:
                    async with asyncio.timeout_at(give_up_at):
                        await self._semaphore.acquire()
            except TimeoutError:
                raise Overloaded(ShedReason.PERMIT_WAIT) from None
            finally:
                self._queued -= 1
                self._waiting.dec()
                self._wait.observe(time.perf_counter() - started)
        self._held += 1
        self._in_use.inc()

    async def try_acquire(self) -> bool:
        """Take a permit only if one is free now (a hedge never queues); `release` it."""
        if self._semaphore.locked():
            return False
        await self._semaphore.acquire()  # free, so this does not yield
        self._held += 1
        self._in_use.inc()
        return True

    def release(self) -> None:
        self._held -= 1
        self._in_use.dec()
        self._semaphore.release()
