"""What the browser panel (`/ui`) shows, as one JSON snapshot: the gateway's metrics as
`/metrics` reports them (the same multiprocess files, so the panel and Prometheus never
disagree), each shard's health and active faults.

Counters and histograms are sent as running totals, as Prometheus scrapes them; the page
takes rates and quantiles from the difference between two snapshots, so any worker can
answer any poll. A worker reads the metric files and asks the shards at most once per
`MAX_AGE_S`, however many tabs poll it (`PanelSource`): a poll takes the last reading
while it is fresh, or waits for the one being made.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from prometheus_client import Metric
from starlette.concurrency import run_in_threadpool

from gateway.metrics import GatewayMetrics
from gateway.shard_admin import ShardAdmin
from gateway.shard_health import shard_health
from gateway.shards import Shard
from gateway.upstream import UpstreamClient

# A shard that does not answer its health check within this is shown down.
HEALTH_TIMEOUT_S = 1.0
# How old a reading a poll may be given; the page polls each second.
MAX_AGE_S = 0.5

# Gauges summed over their series, by panel name.
_GAUGES = {
    "semaphore_in_use": "gateway_semaphore_in_use",
    "semaphore_waiting": "gateway_semaphore_waiting",
    "semaphore_capacity": "gateway_semaphore_capacity",
    "pool_max": "gateway_pool_max_connections",
    "pool_pending": "gateway_pool_pending_requests",
    "aggregates_in_flight": "gateway_aggregates_in_flight",
    "admission_limit": "gateway_admission_limit",
}
# Counters by one label, by panel name.
_COUNTERS = {
    "aggregates": ("gateway_aggregate_requests", "status"),
    "shed": ("gateway_shed_requests", "reason"),
    "retries": ("gateway_retries_sent", None),
    "retries_denied": ("gateway_retries_denied", None),
    "hedges": ("gateway_hedges_sent", None),
    "hedges_won": ("gateway_hedges_won", None),
    "hedges_denied": ("gateway_hedges_denied", None),
}


def metrics_snapshot(families: Iterable[Metric], shard_ids: Sequence[int]) -> dict[str, Any]:
    """The gateway's figures and each shard's call counters, from collected families."""
    by_name = {family.name: family for family in families}
    gateway: dict[str, Any] = {}
    for key, name in _GAUGES.items():
        gateway[key] = sum(sample.value for sample in _samples(by_name, name, name))
    pool: dict[str, float] = defaultdict(float)
    for sample in _samples(by_name, "gateway_pool_connections", "gateway_pool_connections"):
        pool[sample.labels.get("state", "")] += sample.value
    gateway["pool_active"] = pool.get("active", 0.0)
    gateway["pool_idle"] = pool.get("idle", 0.0)
    for key, (name, label) in _COUNTERS.items():
        totals: dict[str, float] = defaultdict(float)
        for sample in _samples(by_name, name, f"{name}_total"):
            totals[sample.labels.get(label, "") if label else "all"] += sample.value
        gateway[key] = totals if label else totals.get("all", 0.0)
    bounds, latency = _histogram(by_name, "gateway_aggregate_duration_seconds", "status")
    # A shed aggregate is answered at once: its time says nothing of the fan-out.
    gateway["latency"] = _summed(latency, exclude="shed")

    _, shard_latency = _histogram(by_name, "gateway_shard_request_duration_seconds", "shard")
    calls: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for sample in _samples(by_name, "gateway_shard_requests", "gateway_shard_requests_total"):
        calls[sample.labels["shard"]][sample.labels["outcome"]] += sample.value
    breakers: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for sample in _samples(by_name, "gateway_circuit_breakers", "gateway_circuit_breakers"):
        breakers[sample.labels["shard"]][sample.labels["state"]] += sample.value
    shards = {
        shard_id: {
            "calls": dict(calls.get(str(shard_id), {})),
            "latency": shard_latency.get(str(shard_id), [0.0] * (len(bounds) + 1)),
            "breaker": _breaker_state(breakers.get(str(shard_id), {})),
        }
        for shard_id in shard_ids
    }
    return {"buckets": bounds, "gateway": gateway, "shards": shards}


def _samples(by_name: dict[str, Metric], family: str, sample_name: str) -> list[Any]:
    # prometheus-client names a counter's family without its `_total`.
    metric = by_name.get(family) or by_name.get(family.removesuffix("_total"))
    if metric is None:
        return []
    return [sample for sample in metric.samples if sample.name == sample_name]


def _histogram(
    by_name: dict[str, Metric], name: str, label: str
) -> tuple[list[float], dict[str, list[float]]]:
    """Bucket bounds (without +Inf) and, per label value, the running count at or below
    each bound, with the total count last."""
    counts: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for sample in _samples(by_name, name, f"{name}_bucket"):
        counts[sample.labels[label]][float(sample.labels["le"])] += sample.value
    bounds = sorted({bound for per in counts.values() for bound in per})
    finite = [bound for bound in bounds if bound != float("inf")]
    series = {key: [per.get(bound, 0.0) for bound in bounds] for key, per in counts.items()}
    return finite, series


def _summed(series: dict[str, list[float]], exclude: str) -> list[float]:
    rows = [counts for key, counts in series.items() if key != exclude]
    return [sum(column) for column in zip(*rows, strict=True)] if rows else []


def _breaker_state(workers: dict[str, float]) -> str:
    """The worst state any worker's breaker is in (each worker keeps its own)."""
    for state in ("open", "half_open"):
        if workers.get(state):
            return state
    return "closed" if workers else "none"


async def shard_views(
    shards: Sequence[Shard], upstream: UpstreamClient, admin: ShardAdmin
) -> list[dict[str, Any]]:
    """Each shard's health (its data port answering `/healthz`), active faults and, when
    it has a finite capacity, its queue (from its admin port)."""
    health, admin_views = await asyncio.gather(
        asyncio.gather(*(shard_health(upstream, shard, HEALTH_TIMEOUT_S) for shard in shards)),
        asyncio.gather(*(_admin_view(admin, shard) for shard in shards)),
    )
    return [
        {"id": shard.id, "zone": shard.zone, "up": bool(answer), **view}
        for shard, answer, view in zip(shards, health, admin_views, strict=True)
    ]


async def _admin_view(admin: ShardAdmin, shard: Shard) -> dict[str, Any]:
    """The shard's active faults and queue; None for what its admin port did not say."""
    view: dict[str, Any] = {"faults": None, "in_service": None, "waiting": None}
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            faults, capacity = await asyncio.gather(
                admin.one(shard, "GET", "/admin/faults"),
                admin.one(shard, "GET", "/admin/capacity"),
            )
    except TimeoutError:
        return view
    if faults.ok and isinstance(faults.body, dict) and isinstance(faults.body.get("faults"), list):
        view["faults"] = faults.body["faults"]
    if capacity.ok and isinstance(capacity.body, dict) and capacity.body.get("capacity"):
        view["in_service"] = capacity.body.get("in_service")
        view["waiting"] = capacity.body.get("waiting")
    return view


def snapshot(
    metrics: dict[str, Any], shards: list[dict[str, Any]], with_faults: bool
) -> dict[str, Any]:
    """One poll's answer: time, gateway figures, and the shards with their counters; their
    faults only `with_faults` (the admin token), as `GET /admin/faults` gives them."""
    views = []
    for view in shards:
        merged = {**view, **metrics["shards"].get(view["id"], {})}
        if not with_faults:
            merged["faults"] = None
        views.append(merged)
    return {
        "time": time.time(),
        "buckets": metrics["buckets"],
        "gateway": metrics["gateway"],
        "shards": views,
        "faults_shown": with_faults,
    }


T = TypeVar("T")


class _Fresh(Generic[T]):
    """A value fetched at most once per `max_age_s`: callers within that share the last
    fetch, and callers while one runs wait for it rather than start their own."""

    def __init__(self, fetch: Callable[[], Awaitable[T]], max_age_s: float) -> None:
        self._fetch = fetch
        self._max_age_s = max_age_s
        self._value: T | None = None
        self._fetched_at = 0.0
        self._fetching: asyncio.Task[T] | None = None

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        if self._value is not None and loop.time() - self._fetched_at < self._max_age_s:
            return self._value
        if self._fetching is None:
            self._fetching = asyncio.create_task(self._refresh())
        # Shielded: a poll that gives up does not cancel the others' fetch.
        return await asyncio.shield(self._fetching)

    async def _refresh(self) -> T:
        try:
            value = await self._fetch()
            self._value, self._fetched_at = value, asyncio.get_running_loop().time()
            return value
        finally:
            self._fetching = None

    async def aclose(self) -> None:
        if self._fetching is not None:
            self._fetching.cancel()
            await asyncio.gather(self._fetching, return_exceptions=True)


class PanelSource:
    """What `/ui/state` reads, per worker: the metric files and the shards' views, each at
    most once per `MAX_AGE_S`."""

    def __init__(
        self,
        metrics: GatewayMetrics,
        shards: Sequence[Shard],
        upstream: UpstreamClient,
        admin: ShardAdmin,
    ) -> None:
        shard_ids = [shard.id for shard in shards]
        # The metric files are read off the event loop, as `/metrics` reads them.
        self.figures = _Fresh(
            lambda: run_in_threadpool(lambda: metrics_snapshot(metrics.families(), shard_ids)),
            MAX_AGE_S,
        )
        self.shards = _Fresh(lambda: shard_views(shards, upstream, admin), MAX_AGE_S)

    async def aclose(self) -> None:
        await self.figures.aclose()
        await self.shards.aclose()
