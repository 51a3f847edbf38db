"""`shardstack bench calibrate`: what the user asked the shards for against what the stack
did, layer by layer. Each aggregate answer is read: per shard call, the delay the shard
injected and the time it served (its `Server-Timing`, as the gateway relays them), and
the call's time as the gateway saw it; per aggregate, the gateway's own time and the
client's. The requested figures come from the model: its quantile function per call,
and for the aggregate, which waits for the slowest of its N calls, by sampling the
shards' own models N at a time.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from hdrh.histogram import HdrHistogram

from shardstack.bench.lab import lab
from shardstack.bench.load import LoadPlan, Tick
from shardstack.bench.measure import Measurement, measure
from shardstack.bench.recording import PERCENTILES, cdf_ms, micros, new_histogram, percentiles_ms
from shardstack.launcher.plan import Stack
from shardstack_kernel.latency import LatencyModel

# Aggregates drawn from the models for the slowest-of-N prediction: p99.9 from 100 of
# them above it, to about 1 % (HdrHistogram's 3 digits are finer still).
PREDICTED_AGGREGATES = 100_000
PREDICTION_SEED = 1

# Layers in the order a call passes through them; the first of each pair is the model's.
CALL_LAYERS = {
    "requested": "requested (the model)",
    "injected": "injected at the shard",
    "served": "served by the shard",
    "observed": "observed by the gateway",
}
AGGREGATE_LAYERS = {
    "predicted": "slowest of N (the model)",
    "gateway": "gateway's own time",
    "client": "observed by the client",
}


@dataclass
class Layers:
    """Filled in from each aggregate answer's body as it arrives."""

    histograms: dict[str, HdrHistogram] = field(
        default_factory=lambda: {
            name: new_histogram() for name in ("injected", "served", "observed", "gateway")
        }
    )
    calls: int = 0
    calls_not_ok: int = 0
    unknown: int = 0  # ok calls whose shard did not say what it injected or served
    unreadable: int = 0  # answers whose body was not an aggregate

    def read(self, body: bytes) -> None:
        try:
            answer = orjson.loads(body)
            entries = answer["shards"]
            self.histograms["gateway"].record_value(micros(answer["elapsed_ms"] / 1e3))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.unreadable += 1
            return
        injected, served, observed = (
            self.histograms["injected"],
            self.histograms["served"],
            self.histograms["observed"],
        )
        for entry in entries:
            self.calls += 1
            if entry.get("status") != "ok":
                self.calls_not_ok += 1
                continue
            observed.record_value(micros(entry["latency_ms"] / 1e3))
            if "injected_ms" not in entry or "served_ms" not in entry:
                self.unknown += 1
                continue
            injected.record_value(micros(entry["injected_ms"] / 1e3))
            served.record_value(micros(entry["served_ms"] / 1e3))


@dataclass
class Calibration:
    models: tuple[LatencyModel, ...]  # per shard
    measurement: Measurement
    layers: Layers
    predicted: HdrHistogram

    def requested_ms(self) -> dict[float, float]:
        """The model's own percentiles per call; with shards of different models, those
        of a call to a shard picked at random (by sampling)."""
        if len(set(self.models)) == 1:
            return {p: self.models[0].quantile_ms(p / 100.0) for p in PERCENTILES}
        rng = random.Random(PREDICTION_SEED)
        histogram = new_histogram()
        for _ in range(PREDICTED_AGGREGATES):
            histogram.record_value(micros(rng.choice(self.models).sample_ms(rng) / 1e3))
        return percentiles_ms(histogram)

    def rows(self) -> list[tuple[str, str, dict[float, float], int]]:
        """(part, layer, percentiles in ms, count) from the model down to the client."""
        layers = self.layers.histograms
        calls = [
            ("call", CALL_LAYERS["requested"], self.requested_ms(), 0),
            *(
                ("call", CALL_LAYERS[name], percentiles_ms(layers[name]), _count(layers[name]))
                for name in ("injected", "served", "observed")
            ),
        ]
        client = self.measurement.recording.ok_latency
        aggregates = [
            ("aggregate", AGGREGATE_LAYERS["predicted"], percentiles_ms(self.predicted), 0),
            ("aggregate", AGGREGATE_LAYERS["gateway"], percentiles_ms(layers["gateway"]),
             _count(layers["gateway"])),
            ("aggregate", AGGREGATE_LAYERS["client"], percentiles_ms(client), _count(client)),
        ]  # fmt: skip
        return [*calls, *aggregates]

    def cdfs(self) -> dict[str, list[tuple[float, float]]]:
        """Per layer, (ms, fraction at or below), for plots; the model's from its quantiles."""
        layers = self.layers.histograms
        cdfs = {name: cdf_ms(layers[name]) for name in ("injected", "served", "observed")}
        if len(set(self.models)) == 1:
            steps = [i / 1000.0 for i in range(1, 1000)] + [0.9995, 0.9999]
            cdfs["requested"] = [(self.models[0].quantile_ms(q), q) for q in steps]
        cdfs["predicted"] = cdf_ms(self.predicted)
        cdfs["gateway"] = cdf_ms(layers["gateway"])
        cdfs["client"] = cdf_ms(self.measurement.recording.ok_latency)
        return cdfs

    def as_dict(self) -> dict[str, Any]:
        specs = sorted({model.spec() for model in self.models})
        return {
            "models": specs,
            "shards": len(self.models),
            "load": self.measurement.as_dict(),
            "rows": [
                {
                    "part": part,
                    "layer": layer,
                    "count": count,
                    "percentiles_ms": {str(p): v for p, v in values.items()},
                }
                for part, layer, values, count in self.rows()
            ],
            "calls": self.layers.calls,
            "calls_not_ok": self.layers.calls_not_ok,
            "calls_unknown": self.layers.unknown,
            "answers_unreadable": self.layers.unreadable,
            "cdf_ms": self.cdfs(),
        }


def predicted_slowest(
    models: tuple[LatencyModel, ...], aggregates: int = PREDICTED_AGGREGATES
) -> HdrHistogram:
    """The aggregate's wait as the models predict it: per aggregate, one draw from each
    shard's model, the largest kept. Sampled, so any model (and a mix) is predicted the
    same way; seeded, so a report is repeatable."""
    rng = random.Random(PREDICTION_SEED)
    histogram = new_histogram()
    samplers = [model.sample_ms for model in models]
    for _ in range(aggregates):
        histogram.record_value(micros(max(sample(rng) for sample in samplers) / 1e3))
    return histogram


async def calibrate(
    stack: Stack, plan: LoadPlan, log_dir: Path, echo: Callable[[str], None], tick: Tick
) -> Calibration:
    """Start the stack's shards and its gateway, load it with `plan`, read every answer."""
    models = tuple(shard.latency for shard in stack.shards)
    predicted = predicted_slowest(models)
    layers = Layers()
    spec = stack.gateway_process
    async with lab(stack, spec, log_dir, echo) as running, running.serving(spec) as server:
        echo(f"calibrate: {plan.describe()}, {plan.duration_s:g}s after {plan.warmup_s:g}s")
        result = await measure("gateway", plan, server, tick, running.shards, layers.read)
    return Calibration(models, result, layers, predicted)


def _count(histogram: HdrHistogram) -> int:
    return int(histogram.get_total_count())
