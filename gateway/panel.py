"""What the browser panel (`/ui`) shows, as one JSON snapshot: the gateway's metrics as
`/metrics` reports them (the same multiprocess files, so the panel and Prometheus never
disagree), each shard's health and active faults.

Counters and histograms are sent as running totals, as Prometheus scrapes them; the page
takes rates and quantiles from the difference between two snapshots, so any worker can
answer any poll and none keeps state for the panel.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import Metric

from gateway.shard_admin import ShardAdmin
from gateway.shard_health import shard_health
from gateway.shards import Shard
from gateway.upstream import UpstreamClient

# A shard that does not answer its health check within this is shown down.
HEALTH_TIMEOUT_S = 1.0

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


def snapshot(metrics: dict[str, Any], shards: list[dict[str, Any]]) -> dict[str, Any]:
    """One poll's answer: time, gateway figures, and the shards with their counters."""
    for view in shards:
        view.update(metrics["shards"].get(view["id"], {}))
    return {
        "time": time.time(),
        "buckets": metrics["buckets"],
        "gateway": metrics["gateway"],
        "shards": shards,
    }
