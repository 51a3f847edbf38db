"""Latency models: the delay a shard adds before answering, drawn from a seeded RNG.

Each model is a small frozen pydantic type with the same shape: its parameters (in
milliseconds), `sample_ms(rng)` and the analytic `quantile_ms(q)` the samples follow.
They are registered by name in `LATENCY_MODELS`; adding a model is adding a class there.

A model is written either as JSON (`{"model": "lognormal", "p50_ms": 5, "p99_ms": 80}`)
or in the compact form used by the CLI and environment, where values follow the
model's fields in order or by name: `lognormal:5,80` or `lognormal:p50_ms=5,p99_ms=80`.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import random
import re
from collections.abc import Mapping
from statistics import NormalDist
from typing import Annotated, Any, ClassVar, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_serializer,
    model_validator,
)

from shardstack_kernel.latency_file import LatencyFiles
from shardstack_kernel.validation import InvalidInput, not_below

_STANDARD_NORMAL = NormalDist()
# No single draw may sleep longer than a day: keeps heavy tails finite and timers sane.
MAX_DELAY_MS = 86_400_000.0
_LOG_MAX_DELAY = math.log(MAX_DELAY_MS)

Millis = Annotated[float, Field(ge=0, le=MAX_DELAY_MS, allow_inf_nan=False)]
PositiveMillis = Annotated[float, Field(gt=0, le=MAX_DELAY_MS, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ClassVar[str]
    # Values only by name (`p50=5`), none by position.
    keyed: ClassVar[bool] = False

    def sample_ms(self, rng: random.Random) -> float:
        raise NotImplementedError

    def quantile_ms(self, q: float) -> float:
        raise NotImplementedError

    def spec(self) -> str:
        """The compact form, e.g. `lognormal:p50_ms=5,p99_ms=80`."""
        params = ",".join(
            f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
            for key, value in self._params().items()
        )
        return f"{self.name}:{params}"

    def _params(self) -> dict[str, float | str]:
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


_PERCENTILE_KEY = re.compile(r"p(?P<p>\d+(?:\.\d+)?)")


class PercentilesLatency(_Model):
    """A distribution given by its percentiles, as measured on a real backend:
    `percentiles:p50=5,p90=20,p99=80,p99.9=300` (ms, each above the last; p50 required).

    Between two given points the log of the latency is linear in the normal score of the
    percentile, so each piece is part of a lognormal (a lognormal's own percentiles give
    it back) and the quantile function is monotone. Past the last point the last piece's
    slope goes on, a lognormal-like tail, up to a day; below the first, the first piece's
    goes on towards zero. With p50 alone every draw is p50.
    """

    name = "percentiles"
    keyed = True
    model: Literal["percentiles"] = "percentiles"
    # (percentile in (0, 100), ms), both increasing
    points: tuple[tuple[float, float], ...]

    @model_validator(mode="before")
    @classmethod
    def _from_keys(cls, data: Any) -> Any:
        """`p50=5, p99.9=300` (compact or JSON keys) into `points`, checked one by one."""
        if not isinstance(data, Mapping):
            return data
        points = []
        for key, raw in data.items():
            if key == "model":
                continue
            match = _PERCENTILE_KEY.fullmatch(str(key))
            if match is None:
                raise ValueError(f"{key}: not a percentile; write them as p50=5,p99.9=300")
            p = float(match["p"])
            if not 0 < p < 100:
                raise ValueError(f"{key}: a percentile is between 0 and 100")
            points.append((p, _positive_ms(str(key), raw)))
        points.sort()
        if not any(p == 50 for p, _ in points):
            raise ValueError("p50: required (the median)")
        for (p_low, low), (p_high, high) in itertools.pairwise(points):
            if high <= low:
                raise ValueError(
                    f"{_percentile_key(p_high)}: must be more than "
                    f"{_percentile_key(p_low)} ({low:g} ms)"
                )
        return {"model": cls.name, "points": tuple(points)}

    @model_serializer
    def _as_keys(self) -> dict[str, Any]:
        return {"model": self.model, **{_percentile_key(p): ms for p, ms in self.points}}

    @functools.cached_property
    def _knots(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Normal scores and log latencies of the points."""
        scores = tuple(_STANDARD_NORMAL.inv_cdf(p / 100) for p, _ in self.points)
        return scores, tuple(math.log(ms) for _, ms in self.points)

    def sample_ms(self, rng: random.Random) -> float:
        return self._at_score(rng.gauss(0.0, 1.0))

    def quantile_ms(self, q: float) -> float:
        if q <= 0:
            return 0.0
        if q >= 1:
            return MAX_DELAY_MS
        return self._at_score(_STANDARD_NORMAL.inv_cdf(q))

    def _at_score(self, z: float) -> float:
        scores, logs = self._knots
        if len(scores) == 1:
            return self.points[0][1]
        # The piece z falls in, or the first or last one extended past the ends.
        i = min(max(bisect.bisect_right(scores, z) - 1, 0), len(scores) - 2)
        slope = (logs[i + 1] - logs[i]) / (scores[i + 1] - scores[i])
        return min(math.exp(min(logs[i] + slope * (z - scores[i]), _LOG_MAX_DELAY)), MAX_DELAY_MS)


class EmpiricalLatency(_Model):
    """Delays resampled from observed ones in a file (shardstack_kernel/latency_file.py):
    one latency a line, each equally likely; or a histogram's cumulative buckets, a draw
    picking a bucket by its count and a value uniformly within it.

    The path names a file in the shard's latency directory (SHARD_LATENCY_DIR). A model
    parsed with `LatencyFiles` holds what the file held; one parsed without (the gateway,
    which checks a fault before it forwards it) only names the file, for each shard to
    read where the model is used."""

    name = "empirical"
    model: Literal["empirical"] = "empirical"
    path: str = Field(min_length=1, max_length=4096, pattern=r"^[^\x00-\x1f\x7f]+$")
    # What the file held when the model was made: part of the model (two reads of a
    # changed file are two models), not of what it prints.
    observations: tuple[float, ...] = Field((), exclude=True)
    buckets: tuple[tuple[float, int], ...] = Field((), exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _read(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        named = {key: value for key, value in data.items() if key in ("model", "path")}
        files = latency_files(info)
        if files is None or not isinstance(data.get("path"), str) or not data["path"]:
            return named  # pydantic names what is missing or wrong
        observed = files.read(data["path"], MAX_DELAY_MS)
        return {**named, "observations": observed.observations, "buckets": observed.buckets}

    @property
    def read(self) -> bool:
        return bool(self.observations or self.buckets)

    @functools.cached_property
    def _cumulative(self) -> tuple[int, ...]:
        return tuple(count for _, count in self.buckets)

    def sample_ms(self, rng: random.Random) -> float:
        if self.observations:
            return self.observations[int(rng.random() * len(self.observations))]
        return self._bucket_quantile(rng.random())

    def quantile_ms(self, q: float) -> float:
        if not self.read:
            raise RuntimeError(f"empirical:{self.path} was parsed without its file")
        if self.observations:
            rank = math.ceil(q * len(self.observations)) - 1
            return self.observations[min(max(rank, 0), len(self.observations) - 1)]
        return self._bucket_quantile(q)

    def _bucket_quantile(self, q: float) -> float:
        if not self.buckets:
            raise RuntimeError(f"empirical:{self.path} was parsed without its file")
        cumulative = self._cumulative
        target = q * cumulative[-1]
        i = bisect.bisect_left(cumulative, target)
        i = min(max(i, 0), len(cumulative) - 1)
        while cumulative[i] == (cumulative[i - 1] if i else 0) and i + 1 < len(cumulative):
            i += 1  # an empty bucket holds nothing to draw
        low = self.buckets[i - 1][0] if i else 0.0
        below = cumulative[i - 1] if i else 0
        inside = cumulative[i] - below
        share = (target - below) / inside if inside else 0.0
        return low + min(max(share, 0.0), 1.0) * (self.buckets[i][0] - low)


def _percentile_key(p: float) -> str:
    return f"p{p:g}"


def _positive_ms(key: str, raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: not a number of milliseconds") from None
    if not (math.isfinite(value) and 0 < value <= MAX_DELAY_MS):
        raise ValueError(f"{key}: must be more than 0 and at most {MAX_DELAY_MS:g} ms")
    return value


LatencyModel = Annotated[
    FixedLatency
    | UniformLatency
    | NormalLatency
    | ExponentialLatency
    | LognormalLatency
    | ParetoLatency
    | PercentilesLatency
    | EmpiricalLatency,
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
        PercentilesLatency,
        EmpiricalLatency,
    )
}


# How an API document states a latency written as text: the string's grammar (the
# compact form or a JSON object) is more than a pattern can say, so it is a format of
# its own, with its rules in words.
LATENCY_SPEC_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": "shardstack-latency",
    "minLength": 1,
    "description": "a latency model: MODEL:VALUES in field order or by name "
    "(fixed:10, uniform:5,15, normal:10,3, exponential:10, lognormal:5,80, pareto:2,1.5, "
    "percentiles:p50=5,p90=20,p99=80, empirical:PATH) or the model as a JSON object; "
    f"milliseconds, at most {MAX_DELAY_MS:,.0f} each; uniform and lognormal in order, "
    "percentiles increasing",
}


_FILES = "latency_files"


def files_context(files: LatencyFiles | None) -> dict[str, Any] | None:
    """The validation context that lets `empirical` models read their file from `files`."""
    return None if files is None else {_FILES: files}


def latency_files(info: ValidationInfo) -> LatencyFiles | None:
    context = info.context
    files = context.get(_FILES) if isinstance(context, dict) else None
    return files if isinstance(files, LatencyFiles) else None


def parse_latency_spec(value: object, info: ValidationInfo) -> LatencyModel:
    """A model from its written form only (the compact string or a JSON object in a
    string), as an API takes it; a model made in Python passes."""
    if not isinstance(value, str | _Model):
        raise InvalidInput.field("model", "a latency is a string like 'fixed:10'")
    return parse_latency(value, latency_files(info))


def parse_latency(value: object, files: LatencyFiles | None = None) -> LatencyModel:
    """Build a model from its compact string, a JSON-like mapping or a model; `InvalidInput` if bad.
    An `empirical` model reads its file from `files`; without, it only names the file.

    Field errors name the model's own fields (`p99_ms`), not pydantic's union path.
    """
    if isinstance(value, _Model):
        if files is None or not isinstance(value, EmpiricalLatency) or value.read:
            return value  # type: ignore[return-value]
        value = value.model_dump()  # a model that only names its file: read it now
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
        return cls.model_validate(value, context=files_context(files))  # type: ignore[return-value]
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
    positional = [
        name for name, info in cls.model_fields.items() if name != "model" and not info.exclude
    ]
    for index, part in enumerate(params.split(",")):
        key, sep, raw = part.partition("=")
        if not sep:
            if cls.keyed:
                raise InvalidInput.field("model", f"{name} takes name=value pairs, e.g. p50=5")
            if index >= len(positional):
                raise InvalidInput.field(
                    "model", f"{name} takes {len(positional)} values: {', '.join(positional)}"
                )
            key, raw = positional[index], key
        result[key.strip()] = raw.strip()
    return result
