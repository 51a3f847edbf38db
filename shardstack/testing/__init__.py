"""Shards for testing a service of your own: `Fleet` (and `AsyncFleet`) starts them, or
attaches to shards already running, and controls them through their admin API; the
pytest plugin (`shardstack.testing.pytest_plugin`) gives each test a `shard_fleet`."""

from shardstack.testing.control import Selector
from shardstack.testing.errors import (
    FleetError,
    FleetStartError,
    InvalidRequest,
    ShardRefused,
    ShardUnreachable,
    Unauthorised,
)
from shardstack.testing.fleet import AsyncFleet, Fleet
from shardstack.testing.results import (
    ActiveFault,
    Decision,
    InjectedFault,
    Received,
    RecentRequest,
    Shard,
)

__all__ = [
    "ActiveFault",
    "AsyncFleet",
    "Decision",
    "Fleet",
    "FleetError",
    "FleetStartError",
    "InjectedFault",
    "InvalidRequest",
    "Received",
    "RecentRequest",
    "Selector",
    "Shard",
    "ShardRefused",
    "ShardUnreachable",
    "Unauthorised",
]
