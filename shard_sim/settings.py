"""A shard's settings, read once from `SHARD_*` environment variables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shard_sim.capacity import Capacity, parse_capacity
from shardstack_kernel import topology
from shardstack_kernel.admin_token import AdminTokenSettings
from shardstack_kernel.latency import FixedLatency, LatencyModel, parse_latency
from shardstack_kernel.latency_file import LatencyFiles
from shardstack_kernel.topology import ADMIN_PORT_OFFSET, ZONE_PATTERN

ENV_PREFIX = "SHARD_"
# Example latency files shipped in the package: SHARD_LATENCY_DIR's default.
LATENCIES = Path(__file__).parent / "latencies"
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024


class ShardSettings(BaseSettings, AdminTokenSettings):
    """One shard process. Defaults run shard 0 on 127.0.0.1:9000 with no added delay."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, populate_by_name=True)

    id: int = Field(0, ge=0, le=9999, description="shard id, 0..N-1")
    host: str = Field(topology.HOST, min_length=1, description="address the ports listen on")
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
    latency_dir: Path = Field(
        LATENCIES,
        description="the directory `empirical` latency files are read from, and nothing "
        "outside it; default the examples the package ships",
    )
    latency: Annotated[LatencyModel, NoDecode] = Field(
        default_factory=lambda: FixedLatency(ms=0),
        description="latency model, compact (`lognormal:5,80`) or JSON; `empirical:NAME` "
        "names a file in latency_dir",
    )
    capacity: Annotated[Capacity | None, NoDecode, BeforeValidator(parse_capacity)] = Field(
        None,
        description="finite capacity, e.g. workers=2,queue=2,overflow=503 (shard_sim/capacity.py); "
        "unbounded by default",
    )
    pack: int = Field(
        1,
        ge=1,
        le=1000,
        description="shards this process serves: ids id..id+pack-1, shard i on port + i "
        "and admin_port + i, each with its own state, RNG and faults",
    )
    zone: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="failure domain, e.g. z1; with pack, one for all or one per shard (z0,z1,...)",
    )
    seed: int = Field(
        0,
        description="RNG seed; the same seed (and request ids) replays the same decisions",
    )
    decision_log: Path | None = Field(
        None, description="append one JSON line per /data request: what was decided"
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="a request's line and headers must arrive within this of its first byte "
        "(a connection's first request: of the connection), on the data and admin ports; "
        "else 408 and the connection closes",
    )
    body_timeout_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="a request's body must arrive within this of its head; else 408 and the "
        "connection closes",
    )
    idle_timeout_s: float = Field(
        75.0,
        gt=0,
        le=86_400,
        description="an idle data connection closes after this; longer than the gateway's "
        "pool keeps one (GATEWAY_POOL_KEEPALIVE_S), so it never reuses one being closed",
    )
    records: int = Field(10, ge=0, le=100_000, description="records in each /data answer")
    record_bytes: int = Field(64, ge=0, le=MAX_PAYLOAD_BYTES, description="bytes per record")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "warning", description="uvicorn's log level"
    )

    @field_validator("latency_dir")
    @classmethod
    def _a_directory(cls, value: Path) -> Path:
        if not value.is_dir():
            raise ValueError(f"{str(value)!r} is not a directory")
        return value

    @field_validator("latency", mode="before")
    @classmethod
    def _latency(cls, value: object, info: ValidationInfo) -> object:
        directory = info.data.get("latency_dir")
        if directory is None:
            raise ValueError("set SHARD_LATENCY_DIR to a directory first")
        return parse_latency(value, LatencyFiles(directory))

    def latency_files(self) -> LatencyFiles:
        return LatencyFiles(self.latency_dir)

    @field_validator("zone", "decision_log", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        zones = self.zones()
        if zones is not None:
            bad = next((zone for zone in zones if not re.match(ZONE_PATTERN, zone)), None)
            if bad is not None:
                raise ValueError(
                    f"zone: {bad!r} is not a zone name (letters, digits, '_.-', up to 32)"
                )
            if len(zones) not in (1, self.pack):
                raise ValueError(
                    f"zone: {len(zones)} zones for {self.pack} packed shards; one, or one each"
                )
        if self.records * self.record_bytes > MAX_PAYLOAD_BYTES:
            raise ValueError(
                f"records x record_bytes must stay under {MAX_PAYLOAD_BYTES} bytes per answer"
            )
        last = self.pack - 1
        if self.port + last > 65535 or self.id + last > 9999:
            raise ValueError(
                f"pack: {self.pack} shards from id {self.id}, port {self.port} "
                "run past id 9999 or port 65535"
            )
        if self.admin_port is None:
            if self.port + last + ADMIN_PORT_OFFSET > 65535:
                raise ValueError(
                    f"admin_port: port + {ADMIN_PORT_OFFSET} is past 65535; set it explicitly"
                )
            # Frozen model: the derived default is filled in once, here.
            object.__setattr__(self, "admin_port", self.port + ADMIN_PORT_OFFSET)
            return self
        if self.admin_port + last > 65535:
            raise ValueError(f"admin_port: admin_port + {last} (pack) is past 65535")
        if abs(self.admin_port - self.port) < self.pack:
            raise ValueError(
                f"admin_port: the admin ports {self.admin_port}..{self.admin_port + last} "
                f"overlap the data ports {self.port}..{self.port + last}"
            )
        return self

    def zones(self) -> list[str] | None:
        return None if self.zone is None else [part.strip() for part in self.zone.split(",")]

    def packed(self) -> list[ShardSettings]:
        """One settings per shard this process serves, each with its own id, ports and zone."""
        assert self.admin_port is not None
        zones = self.zones()
        return [
            self.model_copy(
                update={
                    "id": self.id + index,
                    "port": self.port + index,
                    "admin_port": self.admin_port + index,
                    "pack": 1,
                    "zone": None if zones is None else zones[index if len(zones) > 1 else 0],
                }
            )
            for index in range(self.pack)
        ]

    @property
    def admin_address(self) -> tuple[str, int]:
        assert self.admin_port is not None
        return self.host, self.admin_port
