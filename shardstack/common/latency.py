"""Latency models: the delay a shard adds before answering, drawn from a seeded RNG.

Each model is a small frozen pydantic type with the same shape: its parameters (in
milliseconds), `sample_ms(rng)` and the analytic `quantile_ms(q)` the samples follow.
They are registered by name in `LATENCY_MODELS`; adding a model is adding a class there.

A model is written either as JSON (`{"model": "lognormal", "p50_ms": 5, "p99_ms": 80}`)
or in the compact form used by the CLI and environment, where values follow the
model's fields in order or by name: `lognormal:5,80` or `lognormal:p50_ms=5,p99_ms=80`.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Mapping
from statistics import NormalDist
from typing import Annotated, Any, ClassVar, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shardstack.common.validation import InvalidInput, not_below

_STANDARD_NORMAL = NormalDist()
# No single draw may sleep longer than a day: keeps heavy tails finite and timers sane.
MAX_DELAY_MS = 86_400_000.0

Millis = Annotated[float, Field(ge=0, le=MAX_DELAY_MS, allow_inf_nan=False)]
PositiveMillis = Annotated[float, Field(gt=0, le=MAX_DELAY_MS, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ClassVar[str]

    def sample_ms(self, rng: random.Random) -> float:
        raise NotImplementedError

    def quantile_ms(self, q: float) -> float:
        raise NotImplementedError

    def spec(self) -> str:
        """The compact form, e.g. `lognormal:p50_ms=5,p99_ms=80`."""
        params = ",".join(f"{key}={value:g}" for key, value in self._params().items())
        return f"{self.name}:{params}"

    def _params(self) -> dict[str, float]:
        return {key: value for key, value in self.model_dump().items() if key != "model"}


class FixedLatency(_Model):
    """Every request waits exactly `ms`."""

    name = "fixed"
    model: Literal["fixed"] = "fixed"
    ms: Millis

    def sample_ms(self, rng: random.Random) -> float:
        return self.ms

    def quantile_ms(self, q: float) -> float:
        return self.ms


class UniformLatency(_Model):
    """Delays spread evenly between `low_ms` and `high_ms`."""

    name = "uniform"
    model: Literal["uniform"] = "uniform"
    low_ms: Millis
    high_ms: Millis

    _ordered = not_below("high_ms", "low_ms")

    def sample_ms(self, rng: random.Random) -> float:
        return rng.uniform(self.low_ms, self.high_ms)

    def quantile_ms(self, q: float) -> float:
        return self.low_ms + q * (self.high_ms - self.low_ms)


class NormalLatency(_Model):
    """Gaussian delays around `mean_ms`, truncated at zero (negative draws are redrawn)."""

    name = "normal"
    model: Literal["normal"] = "normal"
    mean_ms: Millis
    stddev_ms: Millis

    def sample_ms(self, rng: random.Random) -> float:
        # mean >= 0, so at least half of all draws are accepted.
        while True:
            delay = rng.gauss(self.mean_ms, self.stddev_ms)
            if delay >= 0:
                return delay

    def quantile_ms(self, q: float) -> float:
        if self.stddev_ms == 0:
            return self.mean_ms
        dist = NormalDist(self.mean_ms, self.stddev_ms)
        below_zero = dist.cdf(0.0)
        return max(0.0, dist.inv_cdf(below_zero + q * (1 - below_zero)))


class ExponentialLatency(_Model):
    """Memoryless delays with mean `mean_ms`: many fast answers, a long thin tail."""

    name = "exponential"
    model: Literal["exponential"] = "exponential"
    mean_ms: PositiveMillis

    def sample_ms(self, rng: random.Random) -> float:
        return min(rng.expovariate(1 / self.mean_ms), MAX_DELAY_MS)

    def quantile_ms(self, q: float) -> float:
        return min(-self.mean_ms * math.log1p(-q), MAX_DELAY_MS)


class LognormalLatency(_Model):
    """The shape of most real service latencies, given by its median and 99th percentile."""

    name = "lognormal"
    model: Literal["lognormal"] = "lognormal"
    p50_ms: PositiveMillis
    p99_ms: PositiveMillis

    _ordered = not_below("p99_ms", "p50_ms")

    # Worked out once per model: each draw is on the data path.
    @functools.cached_property
    def _mu(self) -> float:
        return math.log(self.p50_ms)

    @functools.cached_property
    def _sigma(self) -> float:
        return (math.log(self.p99_ms) - self._mu) / _STANDARD_NORMAL.inv_cdf(0.99)

    def sample_ms(self, rng: random.Random) -> float:
        return min(rng.lognormvariate(self._mu, self._sigma), MAX_DELAY_MS)

    def quantile_ms(self, q: float) -> float:
        if q <= 0:
            return 0.0
        return min(math.exp(self._mu + self._sigma * _STANDARD_NORMAL.inv_cdf(q)), MAX_DELAY_MS)


class ParetoLatency(_Model):
    """Heavy-tailed delays: at least `scale_ms`, tail index `alpha` (smaller is heavier)."""

    name = "pareto"
    model: Literal["pareto"] = "pareto"
    scale_ms: PositiveMillis
    alpha: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)]

    def sample_ms(self, rng: random.Random) -> float:
        return min(self.scale_ms * rng.paretovariate(self.alpha), MAX_DELAY_MS)

    def quantile_ms(self, q: float) -> float:
        return min(self.scale_ms * math.pow(1 - q, -1 / self.alpha), MAX_DELAY_MS)


LatencyModel = Annotated[
    FixedLatency
    | UniformLatency
    | NormalLatency
    | ExponentialLatency
    | LognormalLatency
    | ParetoLatency,
    Field(discriminator="model"),
]

LATENCY_MODELS: Mapping[str, type[_Model]] = {
    cls.name: cls
    for cls in (
        FixedLatency,
        UniformLatency,
        NormalLatency,
        ExponentialLatency,
        LognormalLatency,
        ParetoLatency,
    )
}


def parse_latency(value: object) -> LatencyModel:
    """Build a model from its compact string, a JSON-like mapping or a model; `InvalidInput` if bad.

    Field errors name the model's own fields (`p99_ms`), not pydantic's union path.
    """
    if isinstance(value, _Model):
        return value  # type: ignore[return-value]
    if isinstance(value, str):
        value = _parse_json(value) if value.lstrip().startswith("{") else _parse_compact(value)
    if not isinstance(value, Mapping):
        raise InvalidInput.field(
            "model", "a latency model is a string like 'fixed:10' or an object"
        )
    name = value.get("model")
    cls = LATENCY_MODELS.get(name) if isinstance(name, str) else None
    if cls is None:
        known = ", ".join(LATENCY_MODELS)
        raise InvalidInput.field("model", f"unknown latency model {name!r}; known: {known}")
    try:
        return cls.model_validate(value)  # type: ignore[return-value]
    except ValidationError as exc:
        raise InvalidInput.from_pydantic(exc) from None


def _parse_json(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput.field("model", f"invalid JSON: {exc}") from None


def _parse_compact(spec: str) -> dict[str, Any]:
    name, _, params = spec.strip().partition(":")
    result: dict[str, Any] = {"model": name}
    cls = LATENCY_MODELS.get(name)
    if cls is None or not params.strip():
        return result  # the model lookup or the model's required fields report what is wrong
    positional = [field for field in cls.model_fields if field != "model"]
    for index, part in enumerate(params.split(",")):
        key, sep, raw = part.partition("=")
        if not sep:
            if index >= len(positional):
                raise InvalidInput.field(
                    "model", f"{name} takes {len(positional)} values: {', '.join(positional)}"
                )
            key, raw = positional[index], key
        result[key.strip()] = raw.strip()
    return result
