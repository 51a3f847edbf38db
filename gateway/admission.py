"""Whether a new aggregate may start in this worker, decided before the app reads it.

The front door (gateway/front_door.py) asks on the request's head, in the worker's HTTP
protocol, so that a refusal costs no routing, no validation and no task; `AdmissionLayer`
asks the same of a request that reached the app another way (run without the front door,
or pipelined behind another). The shard-call permits then admit or shed its calls
(gateway/permits.py).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.cpu_limit import CpuLimit
from gateway.metrics import GatewayMetrics
from gateway.overload import RETRY_AFTER_S, Overloaded, ShedReason
from gateway.permits import Permits
from gateway.results import AggregateStatus
from shardstack_kernel.problem import problem_response
from shardstack_kernel.request_id import REQUEST_ID_HEADER, request_id_or_new

AGGREGATE_PATH = "/api/aggregate"
# Set in a request's state when the front door admitted it (and counted it in flight).
ADMITTED = "shardstack.admitted"
_REQUEST_ID = REQUEST_ID_HEADER.encode()


class Admission:
    """Aggregates in progress in this worker, bounded by `max_in_flight`.

    A request counts from the moment it is admitted to the end of its answer. When the
    CPU rather than the shards is the limit, the permits see no queue: what grows is the
    number of aggregates sharing the event loop, each slower the more there are; the cap
    keeps that number, and by Little's law their latency, bounded; `cpu`, when given,
    lowers it while the worker's event loop lags (gateway/cpu_limit.py).
    """

    def __init__(
        self,
        max_in_flight: int,
        permits: Permits,
        shard_count: int,
        metrics: GatewayMetrics,
        cpu: CpuLimit | None = None,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.cpu = cpu
        self.in_flight = 0
        self.shard_count = shard_count
        self._permits = permits
        self._metrics = metrics
        self._gauge = metrics.aggregates_in_flight

    def refusal(self, calls: int | None) -> ShedReason | None:
        """Why a new aggregate of `calls` shard calls would be shed now (None: it is
        admitted). With `calls` unknown, only the cap on aggregates is checked here; its
        calls meet the permits' own rules in the fan-out."""
        if self.in_flight >= self.max_in_flight:
            return ShedReason.IN_FLIGHT
        if self.cpu is not None and self.in_flight >= self.cpu.limit:
            return ShedReason.CPU
        if calls is None:
            return None
        return self._permits.refusal(calls)

    def enter(self) -> None:
        self.in_flight += 1
        self._gauge.inc()

    def leave(self) -> None:
        self.in_flight -= 1
        self._gauge.dec()

    def shed(self, reason: ShedReason, started: float) -> None:
        """Count a request refused at admission, as the route counts one it sheds."""
        self._metrics.shed[reason].inc()
        self._metrics.aggregate(AggregateStatus.SHED, time.perf_counter() - started)


def shed_response(shed: Overloaded, headers: Mapping[str, str] | None = None) -> Response:
    """The 503 of a shed aggregate, wherever the app sheds it (the front door writes the
    same answer as bytes)."""
    return problem_response(
        503, str(shed), headers={"Retry-After": str(RETRY_AFTER_S), **(headers or {})}
    )


class AdmissionLayer:
    """ASGI middleware: counts each aggregate in flight from admission to answer, and
    admits those the front door did not."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != AGGREGATE_PATH:
            await self.app(scope, receive, send)
            return
        state = scope["state"]
        admission: Admission = state["gateway"].admission
        if not state.get(ADMITTED):
            started = time.perf_counter()
            reason = admission.refusal(None)
            if reason is not None:
                admission.shed(reason, started)
                raw = next((v for k, v in scope["headers"] if k == _REQUEST_ID), None)
                echoed = {REQUEST_ID_HEADER: request_id_or_new(raw)}
                await shed_response(Overloaded(reason), echoed)(scope, receive, send)
                return
            admission.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            admission.leave()
