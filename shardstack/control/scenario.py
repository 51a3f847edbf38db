"""Playing a planned scenario (gateway/scenarios.py) against the clock: each step at its
moment, then the wait until its last fault has run its course."""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.scenarios import PlannedStep, end_s
from shardstack_kernel.durations import format_duration


def run(
    steps: list[PlannedStep],
    inject: Callable[[PlannedStep], str],
    echo: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Inject each step at its moment, then wait until the last fault has run its course.
    `inject` returns a one-line outcome. Returns the run's length in seconds."""
    started = clock()
    for step in steps:
        wait_s = started + step.at_s - clock()
        if wait_s > 0:
            sleep(wait_s)
        echo(f"[{step.at_s:8.2f}s] {inject(step)}")
    remaining_s = started + end_s(steps) - clock()
    if remaining_s > 0:
        echo(f"waiting {format_duration(round(remaining_s, 1))} for the last faults to expire ...")
        sleep(remaining_s)
    return clock() - started
