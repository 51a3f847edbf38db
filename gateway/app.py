"""The gateway's app factory; gunicorn serves `gateway.app:create_app()`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import Response

from gateway import openapi
from gateway.admission import Admission, AdmissionLayer
from gateway.breaker import Breakers
from gateway.cpu_limit import CpuLimit
from gateway.fanout import FanOut
from gateway.hedging import Hedging
from gateway.metrics import GatewayMetrics, sample_pool
from gateway.panel import PanelSource
from gateway.permits import Permits
from gateway.retries import Retries
from gateway.routes import aggregate, exposition, faults, health, panel, scenarios
from gateway.settings import GatewaySettings
from gateway.shard_admin import ShardAdmin
from gateway.shards import Shard, shard_table
from gateway.state import GatewayState
from gateway.throttle import Throttles
from gateway.upstream import ConnectionHooks, UpstreamClient, create_upstream
from shardstack_kernel import __version__
from shardstack_kernel.admin_token import token_or_new
from shardstack_kernel.http_protocol import ConnectionTimeouts
from shardstack_kernel.problem import EXCEPTION_HANDLERS, problem_response
from shardstack_kernel.tasks import cancel_and_wait
from shardstack_kernel.validation import InvalidInput, field_errors

_log = logging.getLogger("gateway")


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    # Under gunicorn the master makes a missing token (gateway/gunicorn_conf.py), so every
    # worker shares it; this covers the app run on its own.
    token = token_or_new(settings.configured_token, _log, "gateway")
    shards = shard_table(
        settings.shard_urls, settings.shard_admin_port_offset, settings.shard_zones
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, GatewayState]]:
        metrics = GatewayMetrics(
            (shard.id for shard in shards),
            {shard.id: shard.zone for shard in shards if shard.zone is not None},
        )
        upstream = create_upstream(
            settings, ConnectionHooks(metrics.pool_opened.inc, metrics.pool_closed.inc)
        )
        metrics.pool_max_connections.set(upstream.max_connections)
        admin = ShardAdmin(token)
        panel_source = PanelSource(metrics, shards, upstream, admin)
        tasks = [
            asyncio.create_task(sample_pool(upstream, metrics, settings.pool_sample_ms / 1000.0))
        ]
        try:
            permits = Permits(
                settings.semaphore_size,
                settings.max_queued_calls,
                settings.permit_wait_ms / 1000.0,
                metrics,
            )
            fanout = _fanout(settings, shards, upstream, permits, metrics)
            cpu = None
            if settings.loop_lag_target_ms:
                cpu = CpuLimit(
                    settings.max_aggregates_in_flight, settings.loop_lag_target_ms / 1000, metrics
                )
                tasks.append(asyncio.create_task(cpu.run()))
            admission = Admission(
                settings.max_aggregates_in_flight, permits, len(shards), metrics, cpu
            )
            yield {
                "gateway": GatewayState(
                    settings,
                    shards,
                    upstream,
                    fanout,
                    admission,
                    admin,
                    token,
                    metrics,
                    panel_source,
                    ConnectionTimeouts(settings.header_timeout_s, settings.body_timeout_s),
                )
            }
        finally:
            for task in tasks:
                await cancel_and_wait(task)
            await panel_source.aclose()
            await admin.aclose()
            await upstream.aclose()

    app = FastAPI(
        title="shardstack gateway",
        version=__version__,
        lifespan=lifespan,
        # A trailing slash is a 404: a redirect would turn `DELETE /admin/faults/` (an
        # empty id) into `DELETE /admin/faults`, which removes every fault.
        redirect_slashes=False,
        # Served from the package instead (gateway/routes/panel.py): FastAPI's pages load
        # Swagger UI and ReDoc from a CDN, at a floating version, with inline scripts.
        docs_url=None,
        redoc_url=None,
    )
    for exc_type, handler in {
        **EXCEPTION_HANDLERS,
        RequestValidationError: _request_validation_error,
    }.items():
        app.add_exception_handler(exc_type, handler)
    app.include_router(aggregate.router)
    app.include_router(health.router)
    app.include_router(faults.router)
    app.include_router(scenarios.router)
    app.include_router(exposition.router)
    app.include_router(panel.router)
    app.mount(panel.ASSETS_PATH, panel.assets(), name="ui-assets")
    app.add_middleware(AdmissionLayer)
    openapi.install(app, settings, shards)
    return app


def _fanout(
    settings: GatewaySettings,
    shards: tuple[Shard, ...],
    upstream: UpstreamClient,
    permits: Permits,
    metrics: GatewayMetrics,
) -> FanOut:
    shard_ids = [shard.id for shard in shards]
    hedging = None
    if settings.hedge:
        quantile = settings.hedge_quantile
        if quantile is None:
            # Slow calls come in bursts: hedging the whole budget's share of calls leaves
            # none for them (at 1 - budget, bench tail's hedged p99 was 3.4 x worse).
            quantile = 1.0 - settings.hedge_budget / 2
        hedging = Hedging(shard_ids, quantile, settings.hedge_budget, metrics)
    breakers = None
    if settings.breaker_failures:
        open_s = settings.breaker_open_ms / 1000.0
        breakers = Breakers(shard_ids, settings.breaker_failures, open_s, metrics.circuit_breakers)
    retries = Retries(settings.retry_budget, metrics) if settings.retry_budget else None
    throttles = None
    if settings.throttle_k:
        throttles = Throttles(shard_ids, settings.throttle_k, settings.throttle_window_s)
    shard_timeout_s = settings.shard_timeout_ms / 1000.0
    return FanOut(
        upstream, permits, shard_timeout_s, metrics, hedging, breakers, retries, throttles
    )


async def _request_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    invalid = InvalidInput(field_errors(exc.errors()))
    return problem_response(422, str(invalid), invalid.errors)
