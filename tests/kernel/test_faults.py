"""The fault vocabulary: every kind parses from JSON and words and round-trips, bad input
names its field, delivery goes to the first fault in order, and flapping is a schedule."""

from __future__ import annotations

import pytest

from shardstack_kernel.faults import (
    FAULT_KINDS,
    parse_fault,
    parse_fault_words,
)
from shardstack_kernel.faults.parsing import parse_request_fault
from shardstack_kernel.validation import InvalidInput


def test_every_kind_parses_from_json_and_words_and_round_trips() -> None:
    examples = {
        "latency": "latency latency=lognormal:5,80 jitter_ms=2",
        "error": "error status=429 retry_after_s=3",
        "hang": "hang answer_after_ms=60000",
        "reset": "reset after_bytes=100",
        "slow_body": "slow_body bytes_per_s=500",
        "malformed": "malformed mode=truncated",
        "down": "down period_s=10 on_s=2",
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
        ({"kind": "down", "period_s": 0}, "period_s"),
        ({"kind": "down", "period_s": 2, "on_s": 2}, "on_s"),
        ({"kind": "error", "on_s": 1}, "on_s"),
        ({"kind": "flap", "period_s": 2, "fault": {"kind": "down"}}, "kind"),
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


def test_the_former_flap_kind_is_refused_with_the_form_that_replaces_it() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_fault({"kind": "flap", "period_s": 10, "on_s": 3, "fault": {"kind": "down"}})
    assert "`down period_s=10 on_s=3`" in str(caught.value)


def test_a_schedule_is_on_for_on_s_of_every_period_and_says_when_it_turns() -> None:
    fault = parse_fault({"kind": "error", "period_s": 10, "on_s": 3})
    assert [fault.is_on(second) for second in range(20)] == ([True] * 3 + [False] * 7) * 2
    assert fault.next_toggle_s(1) == pytest.approx(2)
    assert fault.next_toggle_s(4) == pytest.approx(6)
    assert parse_fault({"kind": "error", "period_s": 4}).next_toggle_s(1) == pytest.approx(1)
    assert parse_fault({"kind": "error"}).next_toggle_s(1) is None


@pytest.mark.parametrize(
    "words",
    ["down", "error period_s=10", "error duration_s=5", "error id=x", "nope"],
)
def test_a_request_fault_refuses_listener_kinds_and_timing(words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_request_fault(words.split())
    assert caught.value.errors[0].field == "x-shardstack-fault"
