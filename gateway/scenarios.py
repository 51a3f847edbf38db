"""Scenario files: a seeded timeline of faults, planned the same way on every run.

    name: one slow shard
    seed: 7
    steps:
      - at: 5s
        shards: [3]              # or "all", "0-4", {random: 5}
        inject: {kind: latency, latency: "fixed:300"}
        for: 30s

Every random choice (`{random: k}` selectors) is made up front from `seed`, and every
fault gets an id from the scenario's name and step number, so the shards roll the same
dice (their per-fault RNG is seeded by that id) and two runs inject the same faults on
the same shards at the same moments.

Planned here, where the shards and their selectors are known, for both players: the
CLI (`shardstack scenario run`, shardstack/control/scenario.py) and the browser panel.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from gateway.shards import selected_ids_any
from shardstack_kernel.durations import format_duration, parse_duration
from shardstack_kernel.faults import parse_fault
from shardstack_kernel.request_body import MAX_DEPTH
from shardstack_kernel.validation import FieldError, InvalidInput, field_errors

MAX_STEPS = 1000


def _duration(value: Any) -> float:
    if not isinstance(value, str | int | float):
        return value  # type: ignore[no-any-return]  # pydantic says why it is no number
    try:
        return parse_duration(value, "duration")
    except InvalidInput as exc:
        # Reported at the step's own field (`steps.0.at`), not under a name of ours.
        raise ValueError(exc.errors[0].reason) from None


Duration = Annotated[float, BeforeValidator(_duration), Field(ge=0, le=7 * 24 * 3600)]


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    at: Duration = Field(description="when, from the start of the run")
    shards: str | list[int] | dict[str, int] = Field(
        description="'all', '0-4', [ids] or {random: k}"
    )
    inject: dict[str, Any] = Field(description="the fault, as for POST /admin/faults")
    for_: Duration | None = Field(None, alias="for", gt=0, description="how long it lasts")


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    description: str = ""
    seed: int = 0
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)


@dataclass(frozen=True, slots=True)
class PlannedStep:
    number: int
    at_s: float
    shards: list[int]
    fault: dict[str, Any]

    def describe(self) -> str:
        """One line: `id: kind key=value ... on shards 3,4 for 30s` (defaults left out)."""
        words = parse_fault(self.fault).words()
        duration_s = self.fault.get("duration_s")
        lasting = "" if duration_s is None else f" for {format_duration(duration_s)}"
        shards = ",".join(str(shard) for shard in self.shards)
        return f"{self.fault['id']}: {words}" + (f" on shards {shards}{lasting}")


_MAX_INT_DIGITS = 19


class _Refused(yaml.MarkedYAMLError):
    pass


class _ScenarioLoader(yaml.SafeLoader):
    """YAML's safe loader without what a scenario never needs and an attacker would
    use: aliases (a few hundred bytes of `&a [*a, *a]` grow to gigabytes), nesting past
    `MAX_DEPTH`, and integers past 64 bits (Python refuses to read one past 4,300 digits)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            raise _Refused(
                problem="aliases (*name) are not taken in a scenario", problem_mark=self._mark()
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(
                    problem=f"nested deeper than {MAX_DEPTH} levels", problem_mark=self._mark()
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _mark(self) -> Any:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        return event.start_mark

    def construct_bounded_int(self, node: yaml.ScalarNode) -> int:
        digits = sum(char.isdigit() for char in str(node.value))
        if digits > _MAX_INT_DIGITS:
            raise _Refused(problem="an integer past 64 bits", problem_mark=node.start_mark)
        return self.construct_yaml_int(node)


_ScenarioLoader.add_constructor("tag:yaml.org,2002:int", _ScenarioLoader.construct_bounded_int)


def load(path: Path) -> Scenario:
    """The scenario in `path`; `InvalidInput` naming the step and field at fault."""
    return parse(path.read_text(), str(path))


def parse(text: str, source: str = "scenario") -> Scenario:
    """The scenario written in `text` (YAML); `InvalidInput` naming the step and field at
    fault, or `source` when the text is not YAML."""
    try:
        raw = yaml.load(text, Loader=_ScenarioLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        if isinstance(exc, _Refused):
            raise InvalidInput.field(source, f"{exc.problem}{where}") from None
        raise InvalidInput.field(source, f"not valid YAML{where}") from None
    if not isinstance(raw, dict):
        raise InvalidInput.field(source, "not a scenario: a YAML mapping with name and steps")
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(field_errors(exc.errors(include_url=False))) from None
    errors: list[FieldError] = []
    for index, step in enumerate(scenario.steps):
        fault = {**step.inject}
        for key in ("id", "duration_s"):
            if key in fault:
                errors.append(
                    FieldError(f"steps.{index}.inject.{key}", "set by the scenario; leave it out")
                )
        try:
            parse_fault(fault, field=f"steps.{index}.inject")
        except InvalidInput as exc:
            errors.extend(exc.errors)
    if errors:
        raise InvalidInput(errors)
    return scenario


def plan(
    scenario: Scenario, shard_count: int, zones: Sequence[str | None] | None = None
) -> list[PlannedStep]:
    """Every step resolved: explicit shard ids, fault ids, durations; ordered by time.
    `zones` (each shard's, by id) resolves `zone:NAME` selectors."""
    rng = random.Random(f"shardstack-scenario:{scenario.seed}")
    slug = re.sub(r"[^a-z0-9]+", "-", scenario.name.lower()).strip("-")[:40] or "scenario"
    planned = []
    for index, step in enumerate(scenario.steps):
        shards = selected_ids_any(shard_count, step.shards, f"steps.{index}.shards", rng, zones)
        fault = parse_fault(step.inject).compact()
        fault["id"] = f"{slug}-{index + 1}"
        if step.for_ is not None:
            fault["duration_s"] = step.for_
        planned.append(PlannedStep(index + 1, step.at, shards, fault))
    return sorted(planned, key=lambda step: (step.at_s, step.number))


def end_s(steps: Sequence[PlannedStep]) -> float:
    """When the last fault of a plan has run its course, from the start."""
    return max(step.at_s + float(step.fault.get("duration_s", 0.0)) for step in steps)
