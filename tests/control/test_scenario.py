"""Playing a scenario: each step at its moment, against a clock the test controls."""

from __future__ import annotations

import pytest

from gateway import scenarios
from shardstack.control.scenario import run

TEXT = """name: Brownout Test
steps:
  - {at: 5s, shards: {random: 3}, inject: {kind: error, status: 503}, for: 10s}
  - {at: 1s, shards: 0-1, inject: {kind: latency, latency: "fixed:200"}}
"""


def test_a_run_injects_each_step_at_its_moment_and_waits_out_the_last() -> None:
    steps = scenarios.plan(scenarios.parse(TEXT), 20)
    now = [100.0]
    injected: list[tuple[float, str]] = []

    def inject(step: scenarios.PlannedStep) -> str:
        injected.append((now[0] - 100.0, step.fault["id"]))
        return step.describe()

    def sleep(seconds: float) -> None:
        now[0] += seconds

    took = run(steps, inject, lambda line: None, clock=lambda: now[0], sleep=sleep)
    assert injected == [(1.0, "brownout-test-2"), (5.0, "brownout-test-1")]
    assert took == pytest.approx(15.0)
