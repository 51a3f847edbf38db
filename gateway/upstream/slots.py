"""The cap on shard calls on the wire, held by the gateway rather than by a client library."""

from __future__ import annotations

import asyncio
from types import TracebackType


class CallSlots:
    """At most `limit` calls at once (`async with slots:`); those holding a slot and those
    waiting for one are counted.

    Each client library counts its limit differently (aiohttp hands out an idle keep-alive
    connection without counting it; hyper and httpcore keep their pools per shard), so the
    cap the pool metrics report is held here, the same way for every client.
    """

    def __init__(self, limit: int) -> None:
        self._slots = asyncio.Semaphore(limit)
        self.in_use = 0
        self.waiting = 0

    async def acquire(self) -> None:
        if self._slots.locked():
            self.waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self.waiting -= 1
        else:
            await self._slots.acquire()
        self.in_use += 1

    def release(self) -> None:
        self.in_use -= 1
        self._slots.release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
