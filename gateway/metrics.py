"""The gateway's Prometheus metrics: semaphore, connection pool, shard calls, aggregates.

One `GatewayMetrics` per worker, made by the lifespan. Under gunicorn the values live in
prometheus-client's multiprocess files (gateway/multiprocess.py), and every gauge sums
over live workers (`livesum`): `gateway_semaphore_in_use` is the whole gateway's, and a
dead worker's share leaves it. Run as one process, the metrics use a registry of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.multiprocess import multiprocess_dir
from gateway.overload import ShedReason
from gateway.results import AggregateStatus, ShardOutcome
from gateway.upstream import UpstreamClient
from shardstack_kernel.latency_buckets import LATENCY_BUCKETS_S

# The platform's own cost per call is tens of microseconds to a few milliseconds, unless
# something queues; finer than the latency buckets at the low end.
OVERHEAD_BUCKETS_S = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0,
)  # fmt: skip


class GatewayMetrics:
    """Every metric the gateway exports, with the per-shard series made up front so each
    shard's rate() is 0 rather than absent before its first call."""

    def __init__(self, shard_ids: Iterable[int], zones: Mapping[int, str] | None = None) -> None:
        directory = multiprocess_dir()
        if directory is not None and values.ValueClass is values.MutexValue:
            raise RuntimeError(
                "prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set"
            )
        self.registry = CollectorRegistry(auto_describe=True)
        # Under gunicorn a scrape reads every worker's files, not this worker's registry.
        self._scraped = self.registry
        if directory is not None:
            self._scraped = CollectorRegistry()
            MultiProcessCollector(self._scraped, str(directory))  # type: ignore[no-untyped-call]

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, labels, registry=self.registry, multiprocess_mode="livesum")

        def histogram(name: str, doc: str, labels: tuple[str, ...] = ()) -> Histogram:
            return Histogram(name, doc, labels, registry=self.registry, buckets=LATENCY_BUCKETS_S)

        self.semaphore_capacity = gauge(
            "gateway_semaphore_capacity", "Shard-call permits (GATEWAY_SEMAPHORE_SIZE x workers)."
        )
        self.semaphore_in_use = gauge(
            "gateway_semaphore_in_use", "Shard-call permits held by calls in progress."
        )
        self.semaphore_waiting = gauge(
            "gateway_semaphore_waiting", "Shard calls waiting for a permit."
        )
        self.semaphore_wait = histogram(
            "gateway_semaphore_wait_seconds",
            "Time from asking for a permit to getting it, or to giving up at the deadline.",
        )

        self.pool_connections = gauge(
            "gateway_pool_connections",
            "Upstream connections by state: active (serving a call or connecting) or idle.",
            ("state",),
        )
        self.pool_active = self.pool_connections.labels("active")
        self.pool_idle = self.pool_connections.labels("idle")
        self.pool_max_connections = gauge(
            "gateway_pool_max_connections",
            "Upstream pool size (GATEWAY_POOL_MAX_CONNECTIONS x workers).",
        )
        self.pool_pending = gauge(
            "gateway_pool_pending_requests", "Shard calls waiting for a pooled connection."
        )
        self.pool_opened = Counter(
            "gateway_pool_connections_opened",
            "Upstream connections opened.",
            registry=self.registry,
        )
        self.pool_closed = Counter(
            "gateway_pool_connections_closed",
            "Upstream connections closed.",
            registry=self.registry,
        )

        self.hedges_sent = Counter(
            "gateway_hedges_sent",
            "Second calls sent to a shard slower than its hedge threshold.",
            registry=self.registry,
        )
        self.hedges_won = Counter(
            "gateway_hedges_won",
            "Hedged calls the second call answered first.",
            registry=self.registry,
        )
        hedge_losers = Counter(
            "gateway_hedge_losers",
            "The call of a hedged pair that did not answer: ended (failed before the "
            "other answered), finished (ran on after the answer; its connection went back "
            "to the pool) or cut (still running at its deadline, cancelled: on HTTP/1.1 its "
            "connection closed, except with pyreqwest).",
            ["fate"],
            registry=self.registry,
        )
        self.hedge_losers_ended = hedge_losers.labels("ended")
        self.hedge_losers_finished = hedge_losers.labels("finished")
        self.hedge_losers_cut = hedge_losers.labels("cut")
        self.hedges_denied = Counter(
            "gateway_hedges_denied",
            "Hedges not sent: the budget was spent, or no permit was free.",
            registry=self.registry,
        )

        self.retries_sent = Counter(
            "gateway_retries_sent",
            "Shard calls sent again after a failure a second try can fix.",
            registry=self.registry,
        )
        self.retries_denied = Counter(
            "gateway_retries_denied",
            "Retries not sent: the retry budget was spent.",
            registry=self.registry,
        )
        self.circuit_breakers = gauge(
            "gateway_circuit_breakers",
            "Workers whose breaker for the shard is in the state (closed, open, half_open).",
            ("shard", "state"),
        )
        shed = Counter(
            "gateway_shed_requests",
            "Aggregates answered 503 at once because the gateway was past its capacity.",
            ("reason",),
            registry=self.registry,
        )
        self.shed = {reason: shed.labels(reason.value) for reason in ShedReason}
        self.admission_limit = gauge(
            "gateway_admission_limit",
            "Aggregates the workers would admit at once now: GATEWAY_MAX_AGGREGATES_IN_FLIGHT, "
            "lowered while a worker's event loop lags.",
        )
        self.event_loop_lag = Gauge(
            "gateway_event_loop_lag_seconds",
            "How late a worker's event loop runs a timer, mean over the last 100 ms "
            "(the most lagging worker).",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        refused_connections = Counter(
            "gateway_refused_connections",
            "Client connections cut by the gateway's protocol: past "
            "GATEWAY_MAX_CONNECTIONS (max_connections), slower than "
            "GATEWAY_HEADER_TIMEOUT_S to send a request's head (header_timeout) or than "
            "GATEWAY_BODY_TIMEOUT_S to send its body (body_timeout).",
            ("reason",),
            registry=self.registry,
        )
        self.refused_connections = {
            reason: refused_connections.labels(reason)
            for reason in ("max_connections", "header_timeout", "body_timeout")
        }

        shard_requests = Counter(
            "gateway_shard_requests",
            "Shard calls by shard and outcome.",
            ("shard", "outcome"),
            registry=self.registry,
        )
        shard_duration = histogram(
            "gateway_shard_request_duration_seconds",
            "Shard call latency, waiting for a permit included.",
            ("shard",),
        )
        shards = tuple(shard_ids)
        self._shard_requests = {
            (shard, outcome): shard_requests.labels(str(shard), outcome.value)
            for shard in shards
            for outcome in ShardOutcome
        }
        self._shard_duration = {shard: shard_duration.labels(str(shard)) for shard in shards}
        shard_overhead = Histogram(
            "gateway_shard_overhead_seconds",
            "A shard call's time beyond what the shard says it took (Server-Timing total): "
            "the platform's own cost (network, waiting for a permit, event-loop lag).",
            ("shard",),
            registry=self.registry,
            buckets=OVERHEAD_BUCKETS_S,
        )
        self._shard_overhead = {shard: shard_overhead.labels(str(shard)) for shard in shards}
        # Always 1: each shard's failure domain, to join on in PromQL, e.g.
        # `sum by (zone) (rate(gateway_shard_requests_total[1m]) * on(shard) group_left(zone)
        # gateway_shard_info)`.
        shard_info = Gauge(
            "gateway_shard_info",
            "Each shard's zone (GATEWAY_SHARD_ZONES; empty without zones).",
            ("shard", "zone"),
            registry=self.registry,
            multiprocess_mode="max",
        )
        for shard in shards:
            shard_info.labels(str(shard), (zones or {}).get(shard, "")).set(1)
        self.server_timing_unknown = Counter(
            "gateway_shard_server_timing_unknown",
            "Shard answers without a Server-Timing total the gateway could read.",
            registry=self.registry,
        )

        aggregate_requests = Counter(
            "gateway_aggregate_requests",
            "Aggregates answered, by status (complete, partial, failed, shed).",
            ("status",),
            registry=self.registry,
        )
        aggregate_duration = histogram(
            "gateway_aggregate_duration_seconds", "Aggregate latency by status.", ("status",)
        )
        self._aggregate_requests = {
            status: aggregate_requests.labels(status.value) for status in AggregateStatus
        }
        self._aggregate_duration = {
            status: aggregate_duration.labels(status.value) for status in AggregateStatus
        }
        self.aggregates_in_flight = gauge(
            "gateway_aggregates_in_flight", "Aggregates admitted and not yet answered."
        )

    def shard_call(self, shard: int, outcome: ShardOutcome, seconds: float) -> None:
        self._shard_requests[shard, outcome].inc()
        self._shard_duration[shard].observe(seconds)

    def shard_overhead(self, shard: int, seconds: float) -> None:
        # Both ends read the same monotonic clock, so only the header's rounding (to a
        # microsecond) can make this a hair below zero.
        self._shard_overhead[shard].observe(max(seconds, 0.0))

    def shard_skipped(self, shard: int, outcome: ShardOutcome) -> None:
        """A call not made (breaker open, request shed): counted, but it took no time."""
        self._shard_requests[shard, outcome].inc()

    def aggregate(self, status: AggregateStatus, seconds: float) -> None:
        self._aggregate_requests[status].inc()
        self._aggregate_duration[status].observe(seconds)

    def families(self) -> Iterable[Metric]:
        """What a scrape reads (every worker's values under gunicorn), as metric families."""
        return self._scraped.collect()

    def exposition(self) -> bytes:
        """The text exposition format: every worker's values when under gunicorn."""
        return generate_latest(self._scraped)


async def sample_pool(client: UpstreamClient, metrics: GatewayMetrics, interval_s: float) -> None:
    """Copy the pool's state into the gauges every `interval_s`, until cancelled.

    Sampled, because no client reports its pool changes as they happen; a scrape sees
    numbers at most `interval_s` old.
    """
    while True:
        stats = client.pool_stats()
        metrics.pool_active.set(stats.active)
        metrics.pool_idle.set(stats.idle)
        metrics.pool_pending.set(stats.pending)
        await asyncio.sleep(interval_s)
