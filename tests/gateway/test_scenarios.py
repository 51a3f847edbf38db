"""Scenario files: every bad field named by step, and the plan a seed fixes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import scenarios
from shardstack_kernel.topology import striped_zones
from shardstack_kernel.validation import InvalidInput

ROOT = Path(__file__).parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def test_every_shipped_scenario_loads_and_plans(tmp_path: Path) -> None:
    files = sorted((ROOT / "scenarios").glob("*.yaml"))
    assert files
    for path in files:
        # The zone scenarios need zones: as `shardstack up --zones 4` places them.
        steps = scenarios.plan(scenarios.load(path), 20, striped_zones(20, 4))
        assert steps
        assert all(0 <= shard < 20 for step in steps for shard in step.shards)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("name: x\nsteps: []\n", "steps"),
        ("name: x\nsteps:\n  - {at: soon, shards: all, inject: {kind: error}}\n", "steps.0.at"),
        ("name: x\nsteps:\n  - {at: 0s, shards: all, inject: {kind: nope}}\n",
         "steps.0.inject.kind"),
        ("name: x\nsteps:\n  - {at: 0s, shards: all, inject: {kind: error, id: mine}}\n",
         "steps.0.inject.id"),
        ("name: x\nsteps:\n  - {at: 0s, shards: all, inject: {kind: error}, colour: red}\n",
         "steps.0.colour"),
        ("name: [x\n", "scenario.yaml"),
    ],
)  # fmt: skip
def test_a_bad_file_names_the_step_and_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        scenarios.load(_write(tmp_path, text))
    assert caught.value.errors[0].field.endswith(field)


RANDOM = """name: Brownout Test
seed: {seed}
steps:
  - {{at: 5s, shards: {{random: 3}}, inject: {{kind: error, status: 503}}, for: 10s}}
  - {{at: 1s, shards: 0-1, inject: {{kind: latency, latency: "fixed:200"}}}}
"""


def test_the_seed_fixes_the_plan_and_steps_come_in_time_order(tmp_path: Path) -> None:
    def planned(seed: int) -> list[scenarios.PlannedStep]:
        return scenarios.plan(scenarios.load(_write(tmp_path, RANDOM.format(seed=seed))), 20)

    first = planned(1)
    assert [step.at_s for step in first] == [1.0, 5.0]
    assert [step.fault["id"] for step in first] == ["brownout-test-2", "brownout-test-1"]
    assert first[0].shards == [0, 1]
    assert first[1].fault["duration_s"] == 10.0
    assert first == planned(1)
    assert any(planned(seed)[1].shards != first[1].shards for seed in range(2, 12))
