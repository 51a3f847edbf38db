"""A shard's settings, read once from `SHARD_*` environment variables."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shardstack.common import topology
from shardstack.common.admin_token import TOKEN_ENV, AdminToken
from shardstack.common.latency import FixedLatency, LatencyModel, parse_latency
from shardstack.common.topology import ADMIN_PORT_OFFSET

ENV_PREFIX = "SHARD_"
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024


class ShardSettings(BaseSettings):
    """One shard process. Defaults run shard 0 on 127.0.0.1:9000 with no added delay."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, populate_by_name=True)

    id: int = Field(0, ge=0, le=9999, description="shard id, 0..N-1")
    host: str = Field(topology.HOST, min_length=1)
    port: int = Field(
        topology.SHARD_BASE_PORT, ge=1, le=65535, description="data port: /data, /healthz"
    )
    admin_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description=f"admin port (/admin, /metrics), up when the data port is down; "
        f"default port + {ADMIN_PORT_OFFSET}",
    )
    admin_token: AdminToken | None = Field(
        None, validation_alias=TOKEN_ENV, description="bearer token for /admin routes"
    )
    latency: Annotated[LatencyModel, NoDecode, BeforeValidator(parse_latency)] = Field(
        default_factory=lambda: FixedLatency(ms=0),
        description="latency model, compact (`lognormal:5,80`) or JSON",
    )
    seed: int = Field(0, description="RNG seed; the same seed replays the same delays")
    records: int = Field(10, ge=0, le=100_000, description="records in each /data answer")
    record_bytes: int = Field(64, ge=0, le=MAX_PAYLOAD_BYTES, description="bytes per record")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "warning"

    @model_validator(mode="after")
    def _payload_bounded(self) -> Self:
        if self.records * self.record_bytes > MAX_PAYLOAD_BYTES:
            raise ValueError(
                f"records x record_bytes must stay under {MAX_PAYLOAD_BYTES} bytes per answer"
            )
        if self.admin_port is None:
            if self.port + ADMIN_PORT_OFFSET > 65535:
                raise ValueError(
                    f"admin_port: port + {ADMIN_PORT_OFFSET} is past 65535; set it explicitly"
                )
            # Frozen model: the derived default is filled in once, here.
            object.__setattr__(self, "admin_port", self.port + ADMIN_PORT_OFFSET)
            return self
        if self.admin_port == self.port:
            raise ValueError("admin_port: must differ from port")
        return self

    @property
    def admin_address(self) -> tuple[str, int]:
        assert self.admin_port is not None
        return self.host, self.admin_port
