"""The calibration report's parts that need no stack: the slowest-of-N prediction against
the model's quantile function, each answer read into its layers, and the table."""

from __future__ import annotations

import re

import orjson
import pytest

from shardstack.bench.calibrate import Calibration, Layers, predicted_slowest
from shardstack.bench.load import LoadPlan
from shardstack.bench.measure import Measurement
from shardstack.bench.recording import Recording, percentiles_ms
from shardstack.bench.tables import calibration_table
from shardstack_kernel.latency import parse_latency


@pytest.mark.parametrize("spec", ["lognormal:5,40", "pareto:2,1.5"])
def test_the_slowest_of_n_follows_the_quantile_function_of_the_maximum(spec: str) -> None:
    # For N independent draws, P(max <= x) = F(x)^N: the maximum's q-quantile is the
    # model's q^(1/N)-quantile.
    model = parse_latency(spec)
    predicted = percentiles_ms(predicted_slowest((model,) * 20))
    for p, value in predicted.items():
        # p99.9 has 100 draws above it: about 2 % either way, too few for a 3 % bound.
        if p < 99.9:
            assert value == pytest.approx(model.quantile_ms((p / 100.0) ** (1 / 20)), rel=0.03)


def test_a_mix_of_models_is_predicted_from_each_shard_own() -> None:
    fast, slow = parse_latency("fixed:1"), parse_latency("fixed:50")
    predicted = percentiles_ms(predicted_slowest((fast, fast, slow), aggregates=1000))
    assert predicted[50.0] == pytest.approx(50, rel=1e-3)


def _aggregate(*entries: dict[str, object], elapsed_ms: float = 12.0) -> bytes:
    return orjson.dumps({"status": "complete", "elapsed_ms": elapsed_ms, "shards": entries})


def test_each_answer_is_read_into_its_layers() -> None:
    layers = Layers()
    ok = {"status": "ok", "latency_ms": 11.0, "served_ms": 10.5, "injected_ms": 10.0}
    layers.read(_aggregate(ok, {"status": "timeout", "latency_ms": 500.0}))
    layers.read(_aggregate({"status": "ok", "latency_ms": 3.0}))  # a shard without the header
    layers.read(b"<html>not an aggregate</html>")
    layers.read(b'{"title": "shed"}')
    counts = {name: h.get_total_count() for name, h in layers.histograms.items()}
    assert counts == {"injected": 1, "served": 1, "observed": 2, "gateway": 2}
    assert (layers.calls, layers.calls_not_ok, layers.unknown, layers.unreadable) == (3, 1, 1, 2)
    assert percentiles_ms(layers.histograms["injected"])[50.0] == pytest.approx(10.0, rel=1e-3)


def test_the_table_puts_each_layer_against_its_model() -> None:
    model = parse_latency("fixed:10")
    layers = Layers()
    for _ in range(10):
        layers.read(
            _aggregate(
                {"status": "ok", "latency_ms": 12.0, "served_ms": 10.4, "injected_ms": 10.0},
                elapsed_ms=13.0,
            )
        )
    recording = Recording(elapsed_s=1.0)
    for _ in range(10):
        recording.answered(200, 0.015, partial=False)
    measurement = Measurement("gateway", LoadPlan("http://127.0.0.1:1/", rate=10), recording)
    report = Calibration((model,), measurement, layers, predicted_slowest((model,), 100))
    lines = {re.split(r"\s{2,}", line)[1]: line.split() for line in
             calibration_table(report).splitlines()[1:]}  # fmt: skip
    # Columns: part, layer words..., p50, p90, p99, p99.9, p50 x, p99 x, count.
    assert lines["requested (the model)"][-4:] == ["10.0", "10.0", "10.0", "10.0"]
    assert lines["observed by the gateway"][-3:] == ["1.20", "1.20", "10"]
    assert lines["observed by the client"][-3:] == ["1.50", "1.50", "10"]
    rows = orjson.loads(orjson.dumps(report.as_dict()))["rows"]
    assert [row["layer"] for row in rows][-1] == "observed by the client"
