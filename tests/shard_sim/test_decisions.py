"""Per-request decisions: keyed by (seed, request id, shard, attempt, what decides), so
they replay in any order; correlated faults decided alike on every shard of a request."""

from __future__ import annotations

import random
import statistics

import pytest

from shard_sim import effects
from shard_sim.active_faults import ActiveFaults
from shard_sim.decisions import Decisions
from shard_sim.draws import KeyedRandom
from shardstack_kernel.faults import parse_fault
from shardstack_kernel.validation import InvalidInput

SHARDS = 20
REQUESTS = 4000


def _firing(
    fault_spec: dict[str, object], request_id: str | None, shards: int = SHARDS
) -> set[int]:
    """The shards on which one fault fires for one request (each shard it was put on)."""
    fired = set()
    members = fault_spec.get("selection") or range(shards)
    assert isinstance(members, list | range)
    for shard_id in members:
        table = ActiveFaults(seed=7, shard_id=shard_id)
        table.add(parse_fault({"id": "f", **fault_spec}))
        decisions = Decisions(7, shard_id, request_id, 0)
        if table.firing(decisions):
            fired.add(shard_id)
    return fired


def test_keyed_draws_depend_on_the_key_alone() -> None:
    first = [KeyedRandom(f"r{index}").random() for index in range(200)]
    backwards = [KeyedRandom(f"r{index}").random() for index in reversed(range(200))]
    assert first == backwards[::-1]
    stream = KeyedRandom("r1")
    assert stream.random() == first[1]
    assert stream.random() != first[1]  # the next draw of the same key moves on
    assert len(set(first)) == 200


def test_keyed_draws_are_uniform_and_serve_every_random_method() -> None:
    draws = [KeyedRandom(f"u{index}").random() for index in range(20_000)]
    assert all(0 <= draw < 1 for draw in draws)
    assert statistics.mean(draws) == pytest.approx(0.5, abs=0.01)
    deciles = [sum(int(draw * 10) == decile for draw in draws) for decile in range(10)]
    assert min(deciles) > 1800, deciles
    assert max(deciles) < 2200, deciles
    stream = KeyedRandom("methods")
    picks = stream.sample(range(20), 5)
    assert len(set(picks)) == 5
    assert all(0 <= pick < 20 for pick in picks)
    assert 0 <= stream.getrandbits(7) < 128
    assert 0 <= stream.getrandbits(130) < 1 << 130
    assert stream.lognormvariate(0, 1) > 0
    with pytest.raises(TypeError):
        stream.seed(3)


def test_k_of_n_fires_on_exactly_k_shards_a_different_set_per_request() -> None:
    selection = list(range(0, SHARDS, 2))  # ten shards
    spec = {"kind": "error", "k_of_n": 3, "selection": selection}
    sets = []
    for index in range(200):
        fired = _firing(spec, f"req-{index}")
        assert len(fired) == 3, fired
        assert fired <= set(selection), fired
        sets.append(frozenset(fired))
    # C(10, 3) = 120 sets drawn 200 times: about 97 distinct expected.
    assert len(set(sets)) > 80
    hits = [sum(shard in fired for fired in sets) for shard in selection]
    assert min(hits) > 30, hits
    assert max(hits) < 95, hits  # each about 3/10 of 200


def test_k_of_n_with_a_probability_hits_a_request_on_k_shards_or_none() -> None:
    spec = {"kind": "error", "k_of_n": 2, "selection": list(range(SHARDS)), "probability": 0.5}
    sizes = [len(_firing(spec, f"p-{index}")) for index in range(300)]
    assert set(sizes) == {0, 2}
    assert 110 < sizes.count(2) < 190


def test_k_of_n_without_a_request_id_fires_at_the_same_rate_independently() -> None:
    table = ActiveFaults(seed=1, shard_id=4)
    table.add(parse_fault({"id": "f", "kind": "error", "k_of_n": 2, "selection": list(range(10))}))
    fired = sum(bool(table.firing()) for _ in range(REQUESTS))
    assert fired / REQUESTS == pytest.approx(0.2, abs=0.03)


@pytest.mark.parametrize("correlation", [0.0, 0.5, 1.0])
def test_correlation_ties_two_shards_decisions_by_exactly_its_value(correlation: float) -> None:
    spec = {"kind": "error", "probability": 0.3, "correlation": correlation}
    pairs = []
    for index in range(REQUESTS):
        fired = _firing(spec, f"c-{index}", shards=2)
        pairs.append((0 in fired, 1 in fired))
    first = [float(a) for a, _ in pairs]
    second = [float(b) for _, b in pairs]
    assert statistics.mean(first) == pytest.approx(0.3, abs=0.03)
    assert statistics.mean(second) == pytest.approx(0.3, abs=0.03)
    measured = statistics.correlation(first, second) if correlation < 1 else None
    if measured is None:
        assert first == second
    else:
        assert measured == pytest.approx(correlation, abs=0.06)


def test_every_decision_of_a_request_is_the_same_whatever_came_before() -> None:
    spec = {"kind": "latency", "latency": "lognormal:5,40", "probability": 0.4}

    def decide(order: list[int]) -> dict[int, tuple[bool, float]]:
        table = ActiveFaults(seed=3, shard_id=2)
        table.add(parse_fault({"id": "slow", **spec}))
        decided = {}
        for index in order:
            firing = table.firing(Decisions(3, 2, f"id-{index}", 0))
            delay = effects.delay_s(firing[0][0].fault, firing[0][1]) if firing else 0.0
            decided[index] = (bool(firing), delay)
        return decided

    order = list(range(300))
    shuffled = order[:]
    random.Random(5).shuffle(shuffled)
    assert decide(order) == decide(shuffled)
    # Another attempt of the same request decides afresh.
    table = ActiveFaults(seed=3, shard_id=2)
    table.add(parse_fault({"id": "slow", **spec}))
    attempts = {bool(table.firing(Decisions(3, 2, "id-1", attempt))) for attempt in range(40)}
    assert attempts == {True, False}


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        ({"kind": "down", "k_of_n": 1}, "k_of_n", "acts on the listener"),
        ({"kind": "down", "correlation": 0.5}, "k_of_n", "acts on the listener"),
        ({"kind": "error", "k_of_n": 2, "correlation": 0.5}, "correlation", "does not apply"),
        ({"kind": "error", "correlation": 1.5}, "correlation", "less than or equal to 1"),
        ({"kind": "error", "correlation": -0.1}, "correlation", "greater than or equal to 0"),
        ({"kind": "error", "k_of_n": 0}, "k_of_n", "greater than or equal to 1"),
        ({"kind": "error", "k_of_n": 3, "selection": [1, 2]}, "k_of_n", "more than the 2"),
        ({"kind": "error", "selection": [1, 2]}, "selection", "only with k_of_n"),
        ({"kind": "error", "k_of_n": 1, "selection": [1, 1]}, "selection", "appears twice"),
    ],
)
def test_bad_correlation_fields_are_named(spec: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_fault(spec)
    [error] = refused.value.errors
    assert error.field == field, error
    assert reason in error.reason, error


def test_a_shard_refuses_a_k_of_n_fault_that_cannot_fire_on_it() -> None:
    table = ActiveFaults(seed=0, shard_id=5)
    with pytest.raises(InvalidInput, match="selection: needed with k_of_n"):
        table.add(parse_fault({"kind": "error", "k_of_n": 1}))
    with pytest.raises(InvalidInput, match=r"selection: does not hold this shard \(5\)"):
        table.add(parse_fault({"kind": "error", "k_of_n": 1, "selection": [1, 2]}))
    assert table.listing() == []
