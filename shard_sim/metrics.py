"""The shard's Prometheus metrics, one registry per app (a shard is one process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter

from shard_sim.faults import FAULT_KINDS


@dataclass(slots=True)
class ShardMetrics:
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )
    faults_injected: Counter = field(init=False)

    def __post_init__(self) -> None:
        self.faults_injected = Counter(
            "shard_faults_injected",
            "Faults this shard applied: per request, or for down each time the data port "
            "closed. A flap counts as the kind it wraps.",
            ["kind"],
            registry=self.registry,
        )
        for kind in FAULT_KINDS:
            if kind != "flap":
                self.faults_injected.labels(kind)
