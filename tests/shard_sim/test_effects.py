"""What fault kinds do to a request, by kind (shard_sim/effects/): the order they combine
in, and the check that no kind that acts on requests is left without an effect."""

from __future__ import annotations

import random
from typing import Literal

import pytest

from shard_sim import effects
from shard_sim.effects.answer import Answer
from shardstack_kernel.faults import FAULT_KINDS, Fault, parse_fault


def test_only_the_first_delivery_fault_acts_and_error_combines_with_it() -> None:
    answer = Answer(200, b'{"shard": 1}')
    rng = random.Random(0)
    error = parse_fault({"kind": "error", "status": 503, "retry_after_s": 2})
    assert effects.shape(error, answer, rng)
    assert effects.shape(parse_fault({"kind": "hang"}), answer, rng)
    assert not effects.shape(parse_fault({"kind": "reset"}), answer, rng)
    assert answer.status == 503
    assert (b"retry-after", b"2") in answer.headers


def test_a_latency_fault_delays_by_its_model_and_others_do_not() -> None:
    rng = random.Random(0)
    assert effects.delay_s(parse_fault({"kind": "latency", "latency": "fixed:250"}), rng) == 0.25
    assert effects.delay_s(parse_fault({"kind": "error"}), rng) == 0.0


class _SilentFault(Fault):
    order = 9
    seen_as = "nothing"
    kind: Literal["silent"] = "silent"


def test_a_kind_without_an_effect_stops_the_shard_from_loading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(effects, "FAULT_KINDS", {**FAULT_KINDS, "silent": _SilentFault})
    with pytest.raises(ImportError, match="silent"):
        effects._load()
