"""Latency models: samples follow the configured percentiles; bad specs are refused by name."""

from __future__ import annotations

import random
from pathlib import Path
from statistics import quantiles

import pytest

from shardstack_kernel.latency import LATENCY_MODELS, LognormalLatency, ParetoLatency, parse_latency
from shardstack_kernel.latency_file import LatencyFiles
from shardstack_kernel.validation import InvalidInput

SAMPLES = 40_000


def _sampled_percentiles(spec: str, seed: int = 7) -> tuple[float, float, float]:
    model = parse_latency(spec)
    rng = random.Random(seed)
    cuts = quantiles((model.sample_ms(rng) for _ in range(SAMPLES)), n=100, method="inclusive")
    return cuts[49], cuts[89], cuts[98]


@pytest.mark.parametrize(
    "spec",
    [
        "fixed:12",
        "uniform:5,15",
        "normal:20,5",
        "normal:2,5",  # mostly truncated at zero
        "exponential:10",
        "lognormal:5,80",
        "pareto:2,1.5",
        "pareto:1,0.8",  # infinite mean: only percentiles are meaningful
    ],
)
def test_sampled_percentiles_match_the_model(spec: str) -> None:
    model = parse_latency(spec)
    p50, p90, p99 = _sampled_percentiles(spec)
    for sampled, q in ((p50, 0.50), (p90, 0.90), (p99, 0.99)):
        expected = model.quantile_ms(q)
        # 40k samples: p50 and p90 within 4 %, p99 within 10 % (heavy tails are noisy there).
        tolerance = (0.10 if q == 0.99 else 0.04) * expected + 0.05
        assert abs(sampled - expected) <= tolerance, (spec, q, sampled, expected)


def test_lognormal_is_given_by_its_p50_and_p99() -> None:
    p50, _, p99 = _sampled_percentiles("lognormal:p50_ms=5,p99_ms=80")
    assert 4.8 < p50 < 5.2
    assert 72 < p99 < 88


def test_pareto_tail_is_heavier_than_lognormal_with_the_same_median() -> None:
    pareto = ParetoLatency(scale_ms=2, alpha=1.1)
    lognormal = LognormalLatency(p50_ms=pareto.quantile_ms(0.5), p99_ms=pareto.quantile_ms(0.99))
    assert pareto.quantile_ms(0.9999) > 3 * lognormal.quantile_ms(0.9999)


@pytest.mark.parametrize(
    ("spec", "compact", "as_json"),
    [
        ("fixed:10", "fixed:ms=10", {"model": "fixed", "ms": 10}),
        (
            "uniform:1,5",
            "uniform:low_ms=1,high_ms=5",
            {"model": "uniform", "low_ms": 1, "high_ms": 5},
        ),
        (
            "lognormal:p99_ms=80,p50_ms=5",
            "lognormal:p50_ms=5,p99_ms=80",
            {"model": "lognormal", "p50_ms": 5, "p99_ms": 80},
        ),
        (
            '{"model": "pareto", "scale_ms": 2, "alpha": 1.5}',
            "pareto:scale_ms=2,alpha=1.5",
            {"model": "pareto", "scale_ms": 2, "alpha": 1.5},
        ),
    ],
)
def test_compact_json_and_mapping_forms_agree(
    spec: str, compact: str, as_json: dict[str, object]
) -> None:
    model = parse_latency(spec)
    assert model.spec() == compact
    assert parse_latency(compact) == model == parse_latency(as_json)


def test_every_registered_model_round_trips_through_its_spec(tmp_path: Path) -> None:
    observed = tmp_path / "observed.txt"
    observed.write_text("1\n2\n3\n")
    examples = {
        "fixed": "1",
        "uniform": "1,2",
        "normal": "3,1",
        "exponential": "4",
        "lognormal": "5,50",
        "pareto": "2,1.5",
        "percentiles": "p50=5,p99=80",
        "empirical": str(observed),
    }
    assert set(examples) == set(LATENCY_MODELS)
    files = LatencyFiles(tmp_path)
    for name, params in examples.items():
        model = parse_latency(f"{name}:{params}", files)
        assert parse_latency(model.spec(), files) == model
        assert parse_latency(model.model_dump(), files) == model


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        ("fixed:-1", "ms", "greater than or equal to 0"),
        ("lognormal:50,5", "p99_ms", "greater than or equal to p50_ms"),
        ("uniform:9,3", "high_ms", "greater than or equal to low_ms"),
        ("gamma:1,2", "model", "unknown latency model 'gamma'"),
        ("pareto:2,0", "alpha", "greater than 0"),
        ("exponential:0", "mean_ms", "greater than 0"),
        ("fixed:nan", "ms", "finite"),
        ("fixed:1e12", "ms", "less than or equal to 86400000"),
        ("fixed", "ms", "required"),
        ("fixed:1,2", "model", "fixed takes 1 values"),
        ("fixed:ms=1,extra=2", "extra", "not permitted"),
        ("fixed:ten", "ms", "valid number"),
        ('{"model": ', "model", "invalid JSON"),
    ],
)
def test_bad_models_are_refused_naming_the_field(spec: str, field: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_latency(spec)
    [error] = caught.value.errors
    assert error.field == field
    assert reason in error.reason
