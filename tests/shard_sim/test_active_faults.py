"""The faults active on one shard: ids, bounds, expiry, the order they act in, the
listener held down (also while flapping), and seeded replay."""

from __future__ import annotations

import pytest

from shard_sim.active_faults import MAX_ACTIVE_FAULTS, ActiveFaults
from shardstack_kernel.faults import parse_fault
from shardstack_kernel.validation import Conflict


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _table(seed: int = 0) -> tuple[ActiveFaults, FakeClock]:
    clock = FakeClock()
    return ActiveFaults(seed=seed, shard_id=3, clock=clock), clock


def test_ids_are_generated_unique_and_a_taken_id_is_refused_without_change() -> None:
    table, _ = _table()
    first = table.add(parse_fault({"kind": "error"}))
    second = table.add(parse_fault({"kind": "error"}))
    assert (first.id, second.id) == ("error-1", "error-2")
    table.add(parse_fault({"kind": "reset", "id": "mine"}))
    with pytest.raises(Conflict, match="already active"):
        table.add(parse_fault({"kind": "latency", "latency": "fixed:1", "id": "mine"}))
    assert [entry["id"] for entry in table.listing()] == ["error-1", "error-2", "mine"]
    assert [entry["kind"] for entry in table.listing()] == ["error", "error", "reset"]


def test_active_faults_are_bounded() -> None:
    table, _ = _table()
    for _ in range(MAX_ACTIVE_FAULTS):
        table.add(parse_fault({"kind": "error"}))
    with pytest.raises(Conflict, match="already has"):
        table.add(parse_fault({"kind": "error"}))
    assert len(table.listing()) == MAX_ACTIVE_FAULTS


def test_a_fault_expires_after_its_duration() -> None:
    table, clock = _table()
    table.add(parse_fault({"kind": "error", "duration_s": 30}))
    table.add(parse_fault({"kind": "reset"}))
    clock.now += 29.9
    assert {entry["kind"] for entry in table.listing()} == {"error", "reset"}
    assert table.listing()[0]["remaining_s"] == pytest.approx(0.1)
    assert table.seconds_to_next_change() == pytest.approx(0.1)
    clock.now += 0.1
    assert [entry["kind"] for entry in table.listing()] == ["reset"]
    assert [active.fault.kind for active, _ in table.firing()] == ["reset"]
    assert table.seconds_to_next_change() is None


def test_firing_faults_come_in_the_documented_order() -> None:
    table, _ = _table()
    for spec in [
        {"kind": "slow_body", "bytes_per_s": 10},
        {"kind": "reset"},
        {"kind": "error"},
        {"kind": "latency", "latency": "fixed:5"},
        {"kind": "hang"},
        {"kind": "malformed"},
        {"kind": "down"},
    ]:
        table.add(parse_fault(spec))
    order = [active.fault.kind for active, _ in table.firing()]
    assert order == ["latency", "error", "hang", "reset", "malformed", "slow_body"]


def test_down_holds_the_listener_and_never_fires_on_requests() -> None:
    table, clock = _table()
    assert not table.listener_down()
    table.add(parse_fault({"kind": "down", "duration_s": 5}))
    assert table.listener_down()
    assert table.firing() == []
    clock.now += 5
    assert not table.listener_down()


def test_a_flapping_down_switches_the_listener_with_its_period() -> None:
    table, clock = _table()
    table.add(parse_fault({"kind": "down", "period_s": 10, "on_s": 3}))
    states = []
    for _ in range(20):
        states.append(table.listener_down())
        clock.now += 1
    assert states == [True] * 3 + [False] * 7 + [True] * 3 + [False] * 7
    clock.now = 1000.0 + 1
    assert table.seconds_to_next_change() == pytest.approx(2)
    clock.now = 1000.0 + 4
    assert table.seconds_to_next_change() == pytest.approx(6)


def test_probability_is_rolled_per_request_by_a_per_fault_seeded_rng() -> None:
    def fired(seed: int, fault_id: str) -> list[bool]:
        table, _ = _table(seed)
        table.add(parse_fault({"kind": "error", "probability": 0.3, "id": fault_id}))
        return [bool(table.firing()) for _ in range(2000)]

    run = fired(7, "brownout-1")
    assert run == fired(7, "brownout-1")
    assert run != fired(8, "brownout-1")
    assert run != fired(7, "brownout-2")
    assert 0.25 < sum(run) / len(run) < 0.35
