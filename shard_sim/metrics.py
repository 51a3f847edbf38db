"""The shard's Prometheus metrics, one registry per app (a shard is one process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram

from shardstack.common.faults import FAULT_KINDS
from shardstack.common.latency_buckets import LATENCY_BUCKETS_S


@dataclass(slots=True)
class ShardMetrics:
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )
    requests: Counter = field(init=False)
    delay: Histogram = field(init=False)
    served: Histogram = field(init=False)
    faults_injected: Counter = field(init=False)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "shard_requests", "Requests to /data this shard received.", registry=self.registry
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
