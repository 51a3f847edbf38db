"""Fault kinds and the active-fault table: parsing, bad input, order, expiry, flapping, replay."""

from __future__ import annotations

import random

import pytest

from shard_sim.faults import FAULT_KINDS, parse_fault, parse_fault_words
from shard_sim.faults.active import MAX_ACTIVE_FAULTS, ActiveFaults
from shard_sim.faults.base import Answer
from shardstack.validation import InvalidInput


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _table(seed: int = 0) -> tuple[ActiveFaults, FakeClock]:
    clock = FakeClock()
    return ActiveFaults(seed=seed, shard_id=3, clock=clock), clock


def test_every_kind_parses_from_json_and_words_and_round_trips() -> None:
    examples = {
        "latency": "latency latency=lognormal:5,80 jitter_ms=2",
        "error": "error status=429 retry_after_s=3",
        "hang": "hang answer_after_ms=60000",
        "reset": "reset after_bytes=100",
        "slow_body": "slow_body bytes_per_s=500",
        "malformed": "malformed mode=truncated",
        "down": "down",
        "flap": 'flap period_s=10 on_s=2 fault={"kind":"error","status":500}',
    }
    assert set(examples) == set(FAULT_KINDS)
    for kind, words in examples.items():
        fault = parse_fault_words(words.split())
        assert fault.kind == kind
        assert parse_fault(fault.compact()) == fault
        assert parse_fault_words(fault.words().split()) == fault


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kind": "nope"}, "kind"),
        ({"status": 500}, "kind"),
        ({"kind": "error", "status": 200}, "status"),
        ({"kind": "error", "status": "bad"}, "status"),
        ({"kind": "error", "probability": 1.5}, "probability"),
        ({"kind": "error", "probability": -0.1}, "probability"),
        ({"kind": "error", "duration_s": -1}, "duration_s"),
        ({"kind": "error", "duration_s": 10**9}, "duration_s"),
        ({"kind": "error", "id": "has space"}, "id"),
        ({"kind": "error", "colour": "red"}, "colour"),
        ({"kind": "latency"}, "latency"),
        ({"kind": "latency", "latency": "fixed:-5"}, "latency.ms"),
        ({"kind": "latency", "latency": "lognormal:80,5"}, "latency.p99_ms"),
        ({"kind": "latency", "latency": "fixed:5", "jitter_ms": -1}, "jitter_ms"),
        ({"kind": "slow_body"}, "bytes_per_s"),
        ({"kind": "slow_body", "bytes_per_s": 0}, "bytes_per_s"),
        ({"kind": "malformed", "mode": "sideways"}, "mode"),
        ({"kind": "reset", "after_bytes": -1}, "after_bytes"),
        ({"kind": "hang", "answer_after_ms": 0}, "answer_after_ms"),
        ({"kind": "down", "probability": 0.5}, "probability"),
        ({"kind": "flap", "period_s": 0, "fault": {"kind": "down"}}, "period_s"),
        ({"kind": "flap", "period_s": 2, "on_s": 2, "fault": {"kind": "down"}}, "on_s"),
        ({"kind": "flap", "period_s": 2, "fault": {"kind": "bogus"}}, "fault.kind"),
        ({"kind": "flap", "period_s": 2, "fault": {"kind": "error", "status": 1}}, "fault.status"),
        (
            {
                "kind": "flap",
                "period_s": 2,
                "fault": {"kind": "flap", "period_s": 1, "fault": {"kind": "down"}},
            },
            "fault",
        ),
        ({"kind": "flap", "period_s": 2, "fault": {"kind": "down", "duration_s": 1}}, "fault"),
    ],
)
def test_invalid_fault_names_the_field(spec: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_fault(spec)
    assert caught.value.errors[0].field == field
    assert caught.value.errors[0].reason


def test_words_refuse_what_is_not_key_value() -> None:
    with pytest.raises(InvalidInput, match="'status' is not key=value"):
        parse_fault_words(["error", "status"])
    with pytest.raises(InvalidInput, match="missing"):
        parse_fault_words([])


def test_ids_are_generated_unique_and_a_taken_id_is_refused_without_change() -> None:
    table, _ = _table()
    first = table.add(parse_fault({"kind": "error"}))
    second = table.add(parse_fault({"kind": "error"}))
    assert (first.id, second.id) == ("error-1", "error-2")
    table.add(parse_fault({"kind": "reset", "id": "mine"}))
    with pytest.raises(InvalidInput, match="already active"):
        table.add(parse_fault({"kind": "latency", "latency": "fixed:1", "id": "mine"}))
    assert [entry["id"] for entry in table.listing()] == ["error-1", "error-2", "mine"]
    assert [entry["kind"] for entry in table.listing()] == ["error", "error", "reset"]


def test_active_faults_are_bounded() -> None:
    table, _ = _table()
    for _ in range(MAX_ACTIVE_FAULTS):
        table.add(parse_fault({"kind": "error"}))
    with pytest.raises(InvalidInput, match="already has"):
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
    assert [active.fault.kind for active in table.firing()] == ["reset"]
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
    order = [active.fault.kind for active in table.firing()]
    assert order == ["latency", "error", "hang", "reset", "malformed", "slow_body"]


def test_only_the_first_delivery_fault_acts_and_error_combines_with_it() -> None:
    answer = Answer(200, b'{"shard": 1}')
    rng = random.Random(0)
    assert parse_fault({"kind": "error", "status": 503, "retry_after_s": 2}).shape(answer, rng)
    assert parse_fault({"kind": "hang"}).shape(answer, rng)
    assert not parse_fault({"kind": "reset"}).shape(answer, rng)
    assert answer.status == 503
    assert (b"retry-after", b"2") in answer.headers


def test_down_holds_the_listener_and_never_fires_on_requests() -> None:
    table, clock = _table()
    assert not table.listener_down()
    table.add(parse_fault({"kind": "down", "duration_s": 5}))
    assert table.listener_down()
    assert table.firing() == []
    clock.now += 5
    assert not table.listener_down()


def test_flap_switches_its_fault_on_and_off_with_its_period() -> None:
    table, clock = _table()
    table.add(parse_fault({"kind": "flap", "period_s": 10, "on_s": 3, "fault": {"kind": "down"}}))
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
