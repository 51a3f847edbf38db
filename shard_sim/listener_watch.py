"""Keeps the data listener in step with the `down` faults: closed while one holds it down,
reopened when it expires, is removed or flaps off."""

from __future__ import annotations

import asyncio
import logging

from shard_sim.state import ShardState

_log = logging.getLogger("shard_sim.listener")
_RETRY_S = 1.0


async def keep_listener_in_step(state: ShardState) -> None:
    """Runs for the shard's lifetime; woken by `state.faults_changed` or the next deadline."""
    down = False
    while True:
        wanted = state.faults.listener_down()
        wait_s = state.faults.seconds_to_next_change()
        if wanted != down:
            try:
                await state.listener.set_data_down(wanted)
            except OSError as exc:
                # e.g. another process took the data port while it was down: say so, retry.
                _log.error("cannot %s the data port: %s", "close" if wanted else "reopen", exc)
                wait_s = _RETRY_S if wait_s is None else min(wait_s, _RETRY_S)
            else:
                down = wanted
                if down:
                    state.metrics.faults_injected.labels("down").inc()
        state.faults_changed.clear()
        try:
            # A millisecond past the change, so the deadline has surely passed on waking.
            async with asyncio.timeout(None if wait_s is None else wait_s + 0.001):
                await state.faults_changed.wait()
        except TimeoutError:
            pass
