"""Where a stack's processes listen unless told otherwise: declared once, for the settings
classes of both services, the local launcher and the CLI."""

from __future__ import annotations

HOST = "127.0.0.1"
GATEWAY_PORT = 8000
SHARD_COUNT = 20
# Shard i's data port is SHARD_BASE_PORT + i; its admin port that plus ADMIN_PORT_OFFSET.
SHARD_BASE_PORT = 9000
ADMIN_PORT_OFFSET = 1000
PROMETHEUS_PORT = 9090


def local_shard_urls(
    count: int = SHARD_COUNT, base_port: int = SHARD_BASE_PORT, host: str = HOST
) -> tuple[str, ...]:
    """The URLs of shards 0..count-1 listening on host:base_port+i."""
    return tuple(f"http://{host}:{base_port + index}" for index in range(count))


# A failure domain's name, as in `zone:NAME` selectors and SHARD_ZONE.
ZONE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"


def zone_name(index: int) -> str:
    return f"z{index}"


def striped_zones(count: int, zone_count: int) -> tuple[str, ...]:
    """Shard i in zone `z{i mod zone_count}`: neighbours in different failure domains, as
    replicas are usually spread."""
    return tuple(zone_name(index % zone_count) for index in range(count))
