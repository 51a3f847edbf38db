"""Shard-call permits: an `asyncio.Semaphore` that reports its occupancy as it changes."""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

from gateway.metrics import GatewayMetrics


class Permits:
    """`async with permits:` holds one permit; in use, waiting and the wait are exported.

    The gauges move with the semaphore rather than being sampled, so a scrape sees
    exactly how many calls hold a permit and how many queue for one.
    """

    def __init__(self, capacity: int, metrics: GatewayMetrics) -> None:
        self._semaphore = asyncio.Semaphore(capacity)
        self._in_use = metrics.semaphore_in_use
        self._waiting = metrics.semaphore_waiting
        self._wait = metrics.semaphore_wait
        metrics.semaphore_capacity.set(capacity)

    async def __aenter__(self) -> None:
        if not self._semaphore.locked():
            # Acquiring a free permit does not yield, so nothing can see a call waiting.
            await self._semaphore.acquire()
            self._wait.observe(0.0)
        else:
            self._waiting.inc()
            started = time.perf_counter()
            try:
                await self._semaphore.acquire()
            finally:
                self._waiting.dec()
                self._wait.observe(time.perf_counter() - started)
        self._in_use.inc()

    async def try_acquire(self) -> bool:
        """Take a permit only if one is free now (a hedge never queues); `release` it."""
        if self._semaphore.locked():
            return False
        await self._semaphore.acquire()  # free, so this does not yield
        self._in_use.inc()
        return True

    def release(self) -> None:
        self._in_use.dec()
        self._semaphore.release()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
