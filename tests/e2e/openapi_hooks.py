"""What schemathesis is told beyond the gateway's OpenAPI document (test_openapi.py), all
of it what no JSON Schema can state:

- how to write a latency: the `shardstack-latency` format, drawn from the models' own
  parameter ranges (and a file of observed latencies, when the test names one);
- in the examples meant to be valid, the rules between fields that the document gives
  in words: `min_ok` is at most the shards selected, a fault's `on_s` is shorter than
  its `period_s`, and `k_of_n` is at most the shards selected and not with
  `correlation`. Examples meant to be invalid are left as drawn;
- a fault lives at least as long as the run may look for it again (a minute): one
  removes itself after `duration_s`, as documented, and is then rightly not found.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode

from gateway.shards import selected_ids

# Set by test_openapi.py: the stack's zones, one per shard, and a file of latencies.
ZONES_ENV = "SHARDSTACK_OPENAPI_ZONES"
LATENCY_FILE_ENV = "SHARDSTACK_OPENAPI_LATENCY_FILE"


def _ms(low: int = 0) -> st.SearchStrategy[int]:
    """Milliseconds in thousandths, up to a minute."""
    return st.integers(low, 60_000_000)


def _written(thousandths: int) -> str:
    whole, fraction = divmod(thousandths, 1000)
    return f"{whole}.{fraction:03d}".rstrip("0").rstrip(".") if fraction else str(whole)


@st.composite
def _latency_spec(draw: st.DrawFn) -> str:
    model = draw(
        st.sampled_from(
            ["fixed", "uniform", "normal", "exponential", "lognormal", "pareto", "percentiles"]
            + (["empirical"] if os.environ.get(LATENCY_FILE_ENV) else [])
        )
    )
    if model == "fixed":
        return f"fixed:{_written(draw(_ms()))}"
    if model == "exponential":
        return f"exponential:{_written(draw(_ms(1)))}"
    if model == "empirical":
        return f"empirical:{os.environ[LATENCY_FILE_ENV]}"
    if model == "percentiles":
        values = sorted(draw(st.lists(_ms(1), min_size=1, max_size=4, unique=True)))
        points = zip(["p50", "p90", "p99", "p99.9"], values, strict=False)
        return "percentiles:" + ",".join(f"{p}={_written(v)}" for p, v in points)
    names, first, second = {
        "uniform": (("low_ms", "high_ms"), _ms(), _ms()),
        "normal": (("mean_ms", "stddev_ms"), _ms(), _ms()),
        "lognormal": (("p50_ms", "p99_ms"), _ms(1), _ms(1)),
        "pareto": (("scale_ms", "alpha"), _ms(1), st.integers(1, 1_000_000)),
    }[model]
    values = [draw(first), draw(second)]
    if model in {"uniform", "lognormal"}:
        values.sort()
    if draw(st.booleans()):
        return f"{model}:" + ",".join(_written(value) for value in values)
    return f"{model}:" + ",".join(
        f"{name}={_written(value)}" for name, value in zip(names, values, strict=True)
    )


schemathesis.openapi.format("shardstack-latency", _latency_spec())


def _selected(selector: object) -> int:
    """How many shards a selector the document allows names."""
    if isinstance(selector, str):
        zones = os.environ[ZONES_ENV].split(",")
        return len(selected_ids(len(zones), selector, zones=zones))
    if isinstance(selector, list):
        return len(set(selector))
    assert isinstance(selector, dict)
    return int(selector["random"])


def _fault(body: dict[str, Any]) -> None:
    if body.get("duration_s") is not None:
        body["duration_s"] = max(body["duration_s"], 60.0)
    on_s, period_s = body.get("on_s"), body.get("period_s")
    if on_s is not None and period_s is not None and on_s >= period_s:
        del body["on_s"]  # on for the default half of the period
    if body.get("k_of_n") is not None:
        body["k_of_n"] = min(body["k_of_n"], _selected(body["shards"]))
        body.pop("correlation", None)


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    if case.meta is None or case.meta.generation.mode is not GenerationMode.POSITIVE:
        return case
    query = case.query or {}
    if isinstance(query.get("shards"), str) and isinstance(query.get("min_ok"), int):
        query["min_ok"] = min(query["min_ok"], _selected(query["shards"]))
    if case.method.upper() == "POST" and isinstance(case.body, dict):
        _fault(case.body)
    return case
