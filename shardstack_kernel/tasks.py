"""Stopping a background task without swallowing our own cancellation."""

from __future__ import annotations

import asyncio


async def cancel_and_wait(task: asyncio.Task[object]) -> None:
    """Cancel `task` and wait until it has finished.

    `with suppress(CancelledError): await task` would also swallow a cancellation aimed
    at the caller (Ctrl-C under asyncio.run) if it arrives during that await; waiting
    with `asyncio.wait` lets the task's own cancellation go and the caller's through.
    """
    task.cancel()
    await asyncio.wait([task])
