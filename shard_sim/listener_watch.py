"""Keeps the data listener in step with the `down` faults: closed while one holds it down,
reopened when it expires, is removed or flaps off."""

from __future__ import annotations

import asyncio

from shard_sim.state import ShardState


async def keep_listener_in_step(state: ShardState) -> None:
    """Runs for the shard's lifetime; woken by `state.faults_changed` or the next deadline."""
    down = False
    while True:
        wanted = state.faults.listener_down()
        if wanted != down:
            await state.listener.set_data_down(wanted)
            down = wanted
            if down:
                state.metrics.faults_injected.labels("down").inc()
        wait_s = state.faults.seconds_to_next_change()
        state.faults_changed.clear()
        try:
            # A millisecond past the change, so the deadline has surely passed on waking.
            async with asyncio.timeout(None if wait_s is None else wait_s + 0.001):
                await state.faults_changed.wait()
        except TimeoutError:
            pass
