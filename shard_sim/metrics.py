"""The shard's Prometheus metrics, one registry per app (a shard is one process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shard_sim.capacity import Overflow
from shardstack_kernel.faults import FAULT_KINDS
from shardstack_kernel.latency_buckets import LATENCY_BUCKETS_S


@dataclass(slots=True)
class ShardMetrics:
    shard_id: int = 0
    zone: str | None = None
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )
    requests: Counter = field(init=False)
    admin_requests: Counter = field(init=False)
    delay: Histogram = field(init=False)
    served: Histogram = field(init=False)
    faults_injected: Counter = field(init=False)
    in_service: Gauge = field(init=False)
    queue_depth: Gauge = field(init=False)
    queue_wait: Histogram = field(init=False)
    refusals: Counter = field(init=False)
    info: Gauge = field(init=False)

    def __post_init__(self) -> None:
        # Always 1: which shard this is and its failure domain, for joins in PromQL
        # (`... * on(instance) group_left(zone) shard_info`).
        self.info = Gauge(
            "shard_info",
            "This shard's id and zone (SHARD_ZONE).",
            ["shard", "zone"],
            registry=self.registry,
        )
        self.info.labels(str(self.shard_id), self.zone or "").set(1)
        self.requests = Counter(
            "shard_requests", "Requests to /data this shard received.", registry=self.registry
        )
        self.admin_requests = Counter(
            "shard_admin_requests",
            "Requests this shard's admin port received (the admin API and /metrics), from "
            "the gateway, its panel, the CLI and Prometheus.",
            registry=self.registry,
        )
        self.delay = Histogram(
            "shard_delay_seconds",
            "Delay this shard applied before answering: its latency model plus latency faults.",
            registry=self.registry,
            buckets=LATENCY_BUCKETS_S,
        )
        self.served = Histogram(
            "shard_served_seconds",
            "From a /data request read to its answer written (Server-Timing's total): the "
            "delay plus what the shard itself took.",
            registry=self.registry,
            buckets=LATENCY_BUCKETS_S,
        )
        self.faults_injected = Counter(
            "shard_faults_injected",
            "Faults this shard applied: per request, or for down each time the data port closed.",
            ["kind"],
            registry=self.registry,
        )
        for kind in FAULT_KINDS:
            self.faults_injected.labels(kind)
        # Finite capacity (shard_sim/capacity.py); unbounded, nothing waits or is refused.
        self.in_service = Gauge(
            "shard_in_service",
            "Requests being served now, on a shard of finite capacity (0 when unbounded).",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "shard_queue_depth",
            "Requests waiting for a worker now (finite capacity).",
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "shard_queue_wait_seconds",
            "Time a request waited for a worker (0 for one served at once).",
            registry=self.registry,
            buckets=LATENCY_BUCKETS_S,
        )
        self.refusals = Counter(
            "shard_capacity_refusals",
            "Requests that found the queue full, by the overflow action that answered them.",
            ["overflow"],
            registry=self.registry,
        )
        for action in Overflow:
            self.refusals.labels(action.value)
