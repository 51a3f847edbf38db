"""The shard-call permits on their own: first come first served, a call that gives up
(its wait, or its task) leaves no permit lost or doubled, and the gauges follow."""

from __future__ import annotations

import asyncio

import pytest

from gateway.metrics import GatewayMetrics
from gateway.overload import Overloaded, ShedReason
from gateway.permits import Permits


def _permits(capacity: int) -> Permits:
    return Permits(capacity, max_queued=1000, max_wait_s=10.0, metrics=GatewayMetrics(range(1)))


def _in_use(permits: Permits) -> tuple[int, int]:
    return permits._held, permits._queued


def test_queued_calls_get_permits_in_arrival_order() -> None:
    async def scenario() -> list[int]:
        permits = _permits(2)
        order: list[int] = []
        await permits.acquire(None)
        await permits.acquire(None)

        async def call(index: int) -> None:
            await permits.acquire(None)
            order.append(index)

        waiting = [asyncio.create_task(call(index)) for index in range(5)]
        await asyncio.sleep(0)
        assert _in_use(permits) == (2, 5)
        for _ in range(7):
            permits.release()
            await asyncio.sleep(0)
        await asyncio.gather(*waiting)
        assert _in_use(permits) == (0, 0)
        return order

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4]


def test_a_call_that_waits_too_long_is_shed_and_the_next_one_gets_the_permit() -> None:
    async def scenario() -> None:
        permits = _permits(1)
        await permits.acquire(None)
        loop = asyncio.get_running_loop()
        with pytest.raises(Overloaded) as shed:
            await permits.acquire(loop.time() + 0.01)
        assert shed.value.reason is ShedReason.PERMIT_WAIT
        later = asyncio.create_task(permits.acquire(None))
        await asyncio.sleep(0)
        permits.release()
        await later
        assert _in_use(permits) == (1, 0)
        assert await permits.try_acquire() is False
        permits.release()
        assert await permits.try_acquire() is True

    asyncio.run(scenario())


def test_a_call_cancelled_as_it_is_handed_a_permit_passes_it_on() -> None:
    async def scenario() -> None:
        permits = _permits(1)
        await permits.acquire(None)
        first = asyncio.create_task(permits.acquire(None))
        second = asyncio.create_task(permits.acquire(None))
        await asyncio.sleep(0)
        permits.release()  # hands the permit to `first`, which has not run yet
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await second  # the permit `first` was handed
        assert _in_use(permits) == (1, 0)
        permits.release()
        assert _in_use(permits) == (0, 0)
        assert await permits.try_acquire() is True

    asyncio.run(scenario())
