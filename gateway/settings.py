"""The gateway's settings, read once from `GATEWAY_*` environment variables.

One class serves both the app (in each worker) and `gateway/gunicorn_conf.py` (in the
master), so a bad value stops the gateway before any worker forks.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    AnyHttpUrl,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shardstack_kernel import topology
from shardstack_kernel.admin_token import AdminTokenSettings
from shardstack_kernel.topology import ZONE_PATTERN
from shardstack_kernel.validation import not_below

ENV_PREFIX = "GATEWAY_"

_URL = TypeAdapter(AnyHttpUrl)


class GatewaySettings(BaseSettings, AdminTokenSettings):
    """Defaults fan out to 20 local shards on ports 9000-9019, serving on 127.0.0.1:8000."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, populate_by_name=True)

    shard_urls: Annotated[tuple[str, ...], NoDecode] = Field(
        default=topology.local_shard_urls(),
        description="comma-separated shard base URLs; shard i is the i-th",
    )
    shard_zones: Annotated[tuple[str, ...] | None, NoDecode] = Field(
        None,
        description="comma-separated failure domain of each shard, in shard order (z0,z1,...); "
        "selectors name them as zone:NAME",
    )
    upstream_client: Literal["pyreqwest", "aiohttp", "httpx"] = Field(
        "pyreqwest",
        description="shard client: pyreqwest (Rust; the fastest, docs/benchmarks.md), "
        "aiohttp or httpx",
    )
    semaphore_size: int = Field(
        100, ge=1, le=1_000_000, description="shard calls in flight per worker"
    )
    max_queued_calls: int = Field(
        1000,
        ge=0,
        le=1_000_000,
        description="shard calls that may wait for a permit, per worker; "
        "a request that would queue more is shed at once (503)",
    )
    permit_wait_ms: int = Field(
        1000,
        ge=1,
        le=600_000,
        description="the longest a call may wait for a permit before its request is shed "
        "(503); a request whose calls would wait more than half of it is shed at once",
    )
    pool_max_connections: int = Field(
        100,
        ge=1,
        le=1_000_000,
        description="upstream connections serving calls at once, per worker (idle keep-alive "
        "connections may stay open beyond it until pool_keepalive_s; with pyreqwest at most a "
        "shard's share of it per shard)",
    )
    pool_keepalive_s: float = Field(
        30.0, gt=0, le=3600, description="idle time before a pooled connection closes"
    )
    pool_sample_ms: int = Field(
        100, ge=10, le=60_000, description="how often the pool gauges are read from the client"
    )
    shard_timeout_ms: int = Field(
        1000, ge=1, le=600_000, description="one shard call, once it holds a permit"
    )
    default_timeout_ms: int = Field(
        2000, ge=1, le=600_000, description="aggregate deadline when the request names none"
    )
    max_timeout_ms: int = Field(
        10_000, ge=1, le=600_000, description="largest deadline a request may ask for"
    )
    ready_timeout_ms: int = Field(
        1000, ge=1, le=60_000, description="per-shard health check in /readyz"
    )
    shard_admin_port_offset: int = Field(
        topology.ADMIN_PORT_OFFSET,
        ge=-65534,
        le=65534,
        description="a shard's admin port is its data port plus this (SHARD_ADMIN_PORT)",
    )
    breaker_failures: int = Field(
        5,
        ge=0,
        le=1_000_000,
        description="failed calls in a row that open a shard's circuit breaker; 0: no breakers",
    )
    breaker_open_ms: int = Field(
        5000,
        ge=1,
        le=3_600_000,
        description="how long an open breaker skips its shard before letting one probe through",
    )
    retry_budget: float = Field(
        0.1,
        ge=0,
        le=1,
        description="retries at most this fraction of shard calls (plus a burst of 20); 0: none",
    )
    throttle_k: float = Field(
        0,
        ge=0,
        le=1000,
        description="client-side throttling: refuse a shard call here with probability "
        "max(0, (requests - k * accepts) / (requests + 1)) over the last throttle_window_s; "
        "0: off, else at least 1",
    )
    throttle_window_s: float = Field(
        10, gt=0, le=3600, description="the window over which throttling counts a shard's calls"
    )
    hedge: bool = Field(
        False, description="send a second call to a shard slower than its recent quantile"
    )
    hedge_quantile: float | None = Field(
        None,
        ge=0.5,
        le=0.999,
        description="hedge after this quantile of the shard's answers; unset: "
        "1 - hedge_budget / 2 (hedges then use half the budget, the rest is for bursts)",
    )
    hedge_budget: float = Field(
        0.1, gt=0, le=1, description="hedges at most this fraction of shard calls"
    )
    allow_request_faults: bool = Field(
        False, description="honour the X-Shardstack-Fault header on /api/aggregate"
    )

    bind: str = Field(
        f"{topology.HOST}:{topology.GATEWAY_PORT}",
        min_length=1,
        description="gunicorn bind address",
    )
    workers: int = Field(2, ge=1, le=256, description="gunicorn worker processes")
    worker_timeout_s: int = Field(
        30, ge=1, le=3600, description="gunicorn kills a silent worker after this"
    )
    graceful_timeout_s: int = Field(
        10, ge=0, le=3600, description="time to finish requests on shutdown"
    )
    keepalive_s: int = Field(
        5,
        ge=0,
        le=3600,
        description="an idle client connection on the gateway's own port closes after this "
        "(bytes that begin no request do not keep it open); 0: after each answer",
    )
    max_aggregates_in_flight: int = Field(
        64,
        ge=1,
        le=1_000_000,
        description="aggregates in progress per worker; past it a new one is answered 503 "
        "before the app reads it",
    )
    loop_lag_target_ms: float = Field(
        10.0,
        ge=0,
        le=10_000,
        description="a worker whose event loop lags more than this (mean over 100 ms) admits "
        "fewer aggregates at once, and more again when it lags less than half; 0: a fixed "
        "cap of GATEWAY_MAX_AGGREGATES_IN_FLIGHT",
    )
    refusal_pause_max_ms: int = Field(
        200,
        ge=0,
        le=60_000,
        description="after a 503 at the door, a connection's next request is read no sooner "
        "than 5 ms later, doubling with each refusal in a row up to this; 0: at once",
    )
    max_connections: int = Field(
        16_384,
        ge=1,
        le=1_000_000,
        description="client connections per worker; past it a new one is answered 503 and closed",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="a request's line and headers must arrive within this of its first byte "
        "(or of the connection); a slower client is answered 408 and cut",
    )
    body_timeout_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="a request's body must arrive within this of its head; a slower "
        "client is answered 408 and cut",
    )
    backlog: int = Field(
        1024,
        ge=1,
        le=1_000_000,
        description="listen backlog: connections the kernel queues before a worker accepts "
        "them; at most net.core.somaxconn",
    )
    reuse_port: bool = Field(
        True,
        description="each worker listens on its own SO_REUSEPORT socket, so the kernel "
        "spreads connections evenly over the workers (TCP binds only); a worker that crashes "
        "loses the connections waiting in its accept queue unless the host sets "
        "net.ipv4.tcp_migrate_req=1 (Linux 5.14+)",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="gunicorn's and uvicorn's log level"
    )

    @field_validator("shard_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple):
            return value
        urls = []
        for index, raw in enumerate(value):
            try:
                url = _URL.validate_python(str(raw).strip())
            except ValidationError:
                raise ValueError(f"entry {index} ({raw!r}) is not an http(s) URL") from None
            urls.append(str(url).rstrip("/"))
        if not urls:
            raise ValueError("at least one shard URL is needed")
        return tuple(urls)

    @field_validator("shard_zones", mode="before")
    @classmethod
    def _split_zones(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")] if value.strip() else None
        if isinstance(value, list | tuple):
            for index, zone in enumerate(value):
                if not isinstance(zone, str) or not re.match(ZONE_PATTERN, zone):
                    raise ValueError(
                        f"entry {index} ({zone!r}) is not a zone name "
                        "(letters, digits, '_.-', up to 32)"
                    )
            return tuple(value)
        return value

    @model_validator(mode="after")
    def _a_zone_per_shard(self) -> Self:
        if self.shard_zones is not None and len(self.shard_zones) != len(self.shard_urls):
            raise ValueError(
                f"shard_zones: {len(self.shard_zones)} zones for {len(self.shard_urls)} "
                "shard URLs; one per shard, in the same order"
            )
        return self

    @field_validator("backlog")
    @classmethod
    def _within_somaxconn(cls, value: int) -> int:
        limit = somaxconn()
        if limit is not None and value > limit:
            raise ValueError(
                f"{value} is more than net.core.somaxconn ({limit}), to which the kernel "
                "would cut it; lower it or raise the sysctl"
            )
        return value

    @field_validator("throttle_k")
    @classmethod
    def _throttle_k_off_or_at_least_one(cls, value: float) -> float:
        if 0 < value < 1:
            raise ValueError(
                f"{value:g} would refuse calls to a shard that serves every one; "
                "use 0 (off) or at least 1"
            )
        return value

    @model_validator(mode="after")
    def _reuse_port_needs_tcp(self) -> Self:
        if self.reuse_port and self.bind.startswith(("unix:", "fd://")):
            raise ValueError(
                f"reuse_port: {self.bind!r} is not a TCP address; SO_REUSEPORT needs one "
                "(set GATEWAY_REUSE_PORT=false)"
            )
        return self

    _max_covers_default = not_below("max_timeout_ms", "default_timeout_ms")


def somaxconn() -> int | None:
    """The kernel's cap on a listen backlog, or None where it cannot be read."""
    try:
        return int(Path("/proc/sys/net/core/somaxconn").read_text())
    except (OSError, ValueError):
        return None
