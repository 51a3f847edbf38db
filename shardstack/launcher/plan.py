"""The local stack `shardstack up` runs: what processes, with what settings, on which ports.

Every child's settings are validated here, before anything starts, with the same
settings classes the services use, so a bad value is reported once, by name.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from gateway.multiprocess import MULTIPROC_ENV
from gateway.settings import ENV_PREFIX as GATEWAY_ENV_PREFIX
from gateway.settings import GatewaySettings
from shard_sim.capacity import UNBOUNDED, Capacity
from shard_sim.capacity import spec as capacity_spec
from shard_sim.settings import ENV_PREFIX as SHARD_ENV_PREFIX
from shard_sim.settings import ShardSettings
from shardstack.launcher.prometheus import PROMETHEUS, RULES_FILE, PrometheusPlan, scrape_config
from shardstack.launcher.supervisor import ProcessSpec
from shardstack_kernel import topology
from shardstack_kernel.admin_token import TOKEN_ENV, new_token
from shardstack_kernel.latency import LatencyModel
from shardstack_kernel.validation import InvalidInput

GATEWAY = "gateway"
# Gunicorn reads its configuration from the installed module, wherever the package is.
GATEWAY_CONFIG = "python:gateway.gunicorn_conf"


def shard_name(shard_id: int) -> str:
    return f"shard-{shard_id:02d}"


def process_name(shards: Sequence[ShardSettings]) -> str:
    """`shard-03` for a process serving one shard, `shards-04-07` for a packed one."""
    if len(shards) == 1:
        return shard_name(shards[0].id)
    return f"shards-{shards[0].id:02d}-{shards[-1].id:02d}"


@dataclass(frozen=True)
class StackConfig:
    """What the operator asked for; unset gateway and shard fields come from the environment."""

    shards: int = topology.SHARD_COUNT
    workers: int = GatewaySettings.model_fields["workers"].default
    host: str = topology.HOST
    gateway_port: int = topology.GATEWAY_PORT
    shard_base_port: int = topology.SHARD_BASE_PORT
    shards_per_process: int = ShardSettings.model_fields["pack"].default
    latency: LatencyModel | None = None
    shard_latency: Mapping[int, LatencyModel] = field(default_factory=dict)
    # Every shard's capacity; None leaves SHARD_CAPACITY's, "unbounded" overrides it.
    capacity: Capacity | Literal["unbounded"] | None = None
    seed: int | None = None
    # Shard i in zone z{i mod zones}; None leaves GATEWAY_SHARD_ZONES's, if any.
    zones: int | None = None
    # Where every shard appends its decisions (SHARD_DECISION_LOG).
    decision_log: Path | None = None
    allow_request_faults: bool = False
    # False: the shards alone (`up --shards-only`), for a service of the operator's own.
    gateway: bool = True
    prometheus: Path | None = None  # the binary; None runs no Prometheus
    prometheus_port: int = topology.PROMETHEUS_PORT


@dataclass(frozen=True)
class Stack:
    """A validated plan: the gateway's settings (which hold the shards' table even when no
    gateway runs) and one process spec per child."""

    gateway: GatewaySettings
    shards: tuple[ShardSettings, ...]
    gateway_url: str
    shard_specs: tuple[ProcessSpec, ...]
    gateway_spec: ProcessSpec | None
    admin_token: str
    token_generated: bool
    prometheus: PrometheusPlan | None

    @property
    def gateway_process(self) -> ProcessSpec:
        """The gateway's spec, in a plan that has one (a bench's stack always does)."""
        if self.gateway_spec is None:
            raise ValueError("this stack runs no gateway (--shards-only)")
        return self.gateway_spec

    @property
    def specs(self) -> tuple[ProcessSpec, ...]:
        gateway = () if self.gateway_spec is None else (self.gateway_spec,)
        return (*self.shard_specs, *gateway)


def plan(config: StackConfig) -> Stack:
    """Validate everything and build the process specs; `InvalidInput` if anything is off.

    Children inherit our environment, so `GATEWAY_*` and `SHARD_*` variables set by the
    operator reach them; what the launcher decides (ids, ports, models) overrides those.
    """
    last_port = config.shard_base_port + config.shards - 1
    if last_port > 65535:
        raise InvalidInput.field(
            "--shard-base-port", f"{config.shards} shards from it would need port {last_port}"
        )
    if config.gateway and config.shard_base_port <= config.gateway_port <= last_port:
        raise InvalidInput.field(
            "--port",
            f"{config.gateway_port} is one of the shard ports {config.shard_base_port}-{last_port}",
        )
    if not 1 <= config.shards_per_process <= config.shards:
        raise InvalidInput.field(
            "--shards-per-process",
            f"{config.shards_per_process} is not between 1 and the {config.shards} shards",
        )
    for shard_id in config.shard_latency:
        if not 0 <= shard_id < config.shards:
            raise InvalidInput.field(
                "--shard-latency", f"no shard {shard_id}; ids are 0-{config.shards - 1}"
            )
    if config.zones is not None and not 1 <= config.zones <= config.shards:
        raise InvalidInput.field(
            "--zones", f"{config.zones} is not between 1 and the {config.shards} shards"
        )
    if config.decision_log is not None and not config.decision_log.parent.is_dir():
        raise InvalidInput.field(
            "--decision-log", f"{config.decision_log.parent} is not a directory"
        )
    if config.prometheus is not None and not os.access(config.prometheus, os.X_OK):
        raise InvalidInput.field("--prometheus", f"{config.prometheus} is not an executable file")

    gateway_settings = _validated(
        GatewaySettings,
        GATEWAY_ENV_PREFIX,
        shard_urls=topology.local_shard_urls(config.shards, config.shard_base_port, config.host),
        bind=f"{config.host}:{config.gateway_port}",
        workers=config.workers,
        allow_request_faults=config.allow_request_faults,
        **(
            {}
            if config.zones is None
            else {"shard_zones": topology.striped_zones(config.shards, config.zones)}
        ),
    )
    configured = gateway_settings.configured_token
    token = new_token() if configured is None else configured.get_secret_value()
    # The gateway's zones are the shards' too: one declaration, so /readyz agrees.
    zones = gateway_settings.shard_zones
    shards = tuple(
        _validated_shard(
            config,
            shard_id,
            gateway_settings.shard_admin_port_offset,
            None if zones is None else zones[shard_id],
        )
        for shard_id in range(config.shards)
    )
    gateway_url = f"http://{config.host}:{config.gateway_port}"
    shard_specs = tuple(
        _shard_process(group, token) for group in _packs(shards, config.shards_per_process)
    )
    gateway_spec = (
        ProcessSpec(
            name=GATEWAY,
            argv=(sys.executable, "-m", "gunicorn", "-c", GATEWAY_CONFIG),
            env=_child_env(
                GATEWAY_ENV_PREFIX,
                token,
                shard_urls=",".join(gateway_settings.shard_urls),
                bind=gateway_settings.bind,
                workers=gateway_settings.workers,
                allow_request_faults=gateway_settings.allow_request_faults,
                shard_zones=",".join(zones or ()),
            ),
            ready_url=f"{gateway_url}/readyz",
            ports=((config.host, config.gateway_port),),
        )
        if config.gateway
        else None
    )
    prometheus = _prometheus_plan(config, shards)
    gateway = () if gateway_spec is None else (gateway_spec,)
    listeners = [(spec.name, spec.ports) for spec in (*shard_specs, *gateway)]
    if prometheus is not None:
        listeners.append((PROMETHEUS, ((prometheus.host, prometheus.port),)))
    _refuse_shared_ports(listeners)
    return Stack(
        gateway_settings,
        shards,
        gateway_url,
        shard_specs,
        gateway_spec,
        token,
        configured is None,
        prometheus,
    )


def _packs(shards: Sequence[ShardSettings], size: int) -> list[list[ShardSettings]]:
    """Consecutive shards, at most `size` to a process; a process serves one set of
    settings, so a shard whose settings differ (its own latency) starts a new one."""
    packs: list[list[ShardSettings]] = []
    for shard in shards:
        last = packs[-1] if packs else None
        if last is not None and len(last) < size and _same_but_place(last[0], shard):
            last.append(shard)
        else:
            packs.append([shard])
    return packs


_PLACE = {"id", "port", "admin_port", "pack", "zone"}


def _same_but_place(first: ShardSettings, other: ShardSettings) -> bool:
    return first.model_dump(exclude=_PLACE) == other.model_dump(exclude=_PLACE)


def _shard_process(pack: Sequence[ShardSettings], token: str) -> ProcessSpec:
    first, last = pack[0], pack[-1]
    return ProcessSpec(
        name=process_name(pack),
        argv=(sys.executable, "-m", "shard_sim"),
        env=_child_env(
            SHARD_ENV_PREFIX,
            token,
            # One process with a registry of its own per shard: the gateway's metrics
            # directory, if the operator set one, is not for a shard.
            drop=(MULTIPROC_ENV,),
            id=first.id,
            host=first.host,
            port=first.port,
            admin_port=first.admin_port,
            pack=len(pack),
            latency=first.latency.spec(),
            capacity=capacity_spec(first.capacity),
            seed=first.seed,
            zone=",".join(shard.zone for shard in pack if shard.zone is not None),
            decision_log="" if first.decision_log is None else first.decision_log,
        ),
        # The last data port opens last.
        ready_url=f"http://{last.host}:{last.port}/healthz",
        ports=tuple(
            address for shard in pack for address in ((shard.host, shard.port), shard.admin_address)
        ),
    )


def _prometheus_plan(config: StackConfig, shards: Sequence[ShardSettings]) -> PrometheusPlan | None:
    if config.prometheus is None:
        return None
    address = f"{config.host}:{config.prometheus_port}"
    scraped = scrape_config(
        gateway=f"{config.host}:{config.gateway_port}" if config.gateway else None,
        shards=[(shard.id, f"{shard.host}:{shard.admin_port}") for shard in shards],
        prometheus=address,
        rule_files=[str(RULES_FILE)],
    )
    return PrometheusPlan(config.prometheus, config.host, config.prometheus_port, scraped)


_PORT_OPTIONS = {GATEWAY: "--port", PROMETHEUS: "--prometheus-port"}


def _refuse_shared_ports(listeners: list[tuple[str, Sequence[tuple[str, int]]]]) -> None:
    owners: dict[tuple[str, int], str] = {}
    for name, addresses in listeners:
        for address in addresses:
            if address in owners:
                raise InvalidInput.field(
                    _PORT_OPTIONS.get(name, "--shard-base-port"),
                    f"port {address[1]} would serve both {owners[address]} and {name}",
                )
            owners[address] = name


def _validated_shard(
    config: StackConfig, shard_id: int, admin_port_offset: int, zone: str | None
) -> ShardSettings:
    port = config.shard_base_port + shard_id
    admin_port = port + admin_port_offset
    if not 1 <= admin_port <= 65535:
        raise InvalidInput.field(
            "GATEWAY_SHARD_ADMIN_PORT_OFFSET",
            f"shard {shard_id}'s admin port would be {admin_port}, outside 1-65535",
        )
    overrides: dict[str, Any] = {
        "id": shard_id,
        "host": config.host,
        "port": port,
        "admin_port": admin_port,
        "zone": zone,
    }
    if config.decision_log is not None:
        overrides["decision_log"] = config.decision_log
    latency = config.shard_latency.get(shard_id, config.latency)
    if latency is not None:
        overrides["latency"] = latency
    if config.capacity is not None:
        overrides["capacity"] = None if config.capacity == UNBOUNDED else config.capacity
    if config.seed is not None:
        overrides["seed"] = config.seed
    return _validated(ShardSettings, SHARD_ENV_PREFIX, **overrides)


_Settings = TypeVar("_Settings", GatewaySettings, ShardSettings)


def _validated(cls: type[_Settings], prefix: str, **overrides: Any) -> _Settings:
    """Settings as the child will see them: `overrides` on top of the inherited environment."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise InvalidInput.from_settings(exc, prefix) from None


def _child_env(
    prefix: str, token: str, drop: Sequence[str] = (), **overrides: object
) -> dict[str, str]:
    inherited = {key: value for key, value in os.environ.items() if key not in drop}
    return {
        **inherited,
        TOKEN_ENV: token,
        **{f"{prefix}{key.upper()}": str(value) for key, value in overrides.items()},
    }
