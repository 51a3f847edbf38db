"""The pytest plugin (registered by the package's `pytest11` entry point, active wherever
shardstack is installed): a `shard_fleet` fixture backed by one fleet per configuration
per session, reset after every test so tests stay independent.

```python
@pytest.mark.shards(count=5, latency="fixed:10")
def test_my_service_keeps_its_deadline(shard_fleet):
    shard_fleet.inject(3, "latency", latency="fixed:800")
    ...
```

Options set the defaults a marker overrides: --shard-fleet-count, --shard-fleet-latency,
--shard-fleet-seed. Ports come from a block of the pytest-xdist worker's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from shardstack_kernel import topology

if TYPE_CHECKING:
    from shardstack.testing.fleet import Fleet

MARKER = "shards"
# What a marker may set: the fleet's own parameters, `count` being its `shards`.
MARKER_KEYS = ("count", "latency", "capacity", "zones", "seed", "shards_per_process")


@dataclass(frozen=True, slots=True)
class FleetConfig:
    count: int
    latency: str | None = None
    capacity: str | None = None
    zones: int | None = None
    seed: int | None = None
    shards_per_process: int = 1


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("shardstack", "shardstack's shard_fleet fixture")
    group.addoption(
        "--shard-fleet-count",
        type=int,
        default=topology.SHARD_COUNT,
        help="Shards in a fleet whose test names no count (default: %(default)s).",
    )
    group.addoption(
        "--shard-fleet-latency",
        default=None,
        help="Latency model of a fleet whose test names none, e.g. fixed:10.",
    )
    group.addoption(
        "--shard-fleet-seed", type=int, default=None, help="Seed of a fleet whose test names none."
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(count=, latency=, capacity=, zones=, seed=, shards_per_process=): "
        "the fleet the shard_fleet fixture gives this test",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A marker with an unknown key stops the run before any fleet starts."""
    for item in items:
        for marker in item.iter_markers(MARKER):
            _config_of(marker, config, item.nodeid)


def _config_of(marker: pytest.Mark | None, config: pytest.Config, where: str) -> FleetConfig:
    given: dict[str, Any] = {
        "count": config.getoption("--shard-fleet-count"),
        "latency": config.getoption("--shard-fleet-latency"),
        "seed": config.getoption("--shard-fleet-seed"),
    }
    if marker is not None:
        if marker.args:
            raise pytest.UsageError(f"{where}: @pytest.mark.{MARKER} takes keywords only")
        unknown = sorted(set(marker.kwargs) - set(MARKER_KEYS))
        if unknown:
            raise pytest.UsageError(
                f"{where}: @pytest.mark.{MARKER} has no {', '.join(unknown)}; "
                f"it takes {', '.join(MARKER_KEYS)}"
            )
        for key, value in marker.kwargs.items():
            if value is not None and not isinstance(value, str | int):
                raise pytest.UsageError(
                    f"{where}: @pytest.mark.{MARKER}({key}=...) takes a string or a number, "
                    'as the command line writes it (latency="fixed:10")'
                )
        given |= marker.kwargs
    return FleetConfig(**given)


class _Fleets:
    """The session's fleets, one per configuration, started when a test first needs one
    and stopped at the end of the session."""

    def __init__(self) -> None:
        self._fleets: dict[FleetConfig, Fleet] = {}

    def get(self, wanted: FleetConfig) -> Fleet:
        # Imported here: every pytest run where shardstack is installed loads this module.
        from shardstack.testing import Fleet, FleetStartError, InvalidRequest

        fleet = self._fleets.get(wanted)
        if fleet is None:
            try:
                fleet = Fleet(
                    wanted.count,
                    latency=wanted.latency,
                    capacity=wanted.capacity,
                    zones=wanted.zones,
                    seed=wanted.seed,
                    shards_per_process=wanted.shards_per_process,
                )
            except InvalidRequest as exc:
                raise pytest.UsageError(f"@pytest.mark.{MARKER}: {exc}") from None
            try:
                fleet.start()
            except FleetStartError as exc:
                pytest.fail(f"shard_fleet: {exc}", pytrace=False)
            self._fleets[wanted] = fleet
        return fleet

    def stop(self) -> None:
        for fleet in self._fleets.values():
            fleet.stop()
        self._fleets.clear()


@pytest.fixture(scope="session")
def _shard_fleets() -> Iterator[_Fleets]:
    fleets = _Fleets()
    yield fleets
    fleets.stop()


@pytest.fixture
def shard_fleet(request: pytest.FixtureRequest, _shard_fleets: _Fleets) -> Iterator[Fleet]:
    """Shards for this test (`@pytest.mark.shards(...)` says how many and how they
    behave), as the session's fleet of that configuration; after the test every shard
    is as it was found: no faults, its latency and capacity back, nothing received."""
    wanted = _config_of(
        request.node.get_closest_marker(MARKER), request.config, request.node.nodeid
    )
    fleet = _shard_fleets.get(wanted)
    yield fleet
    fleet.reset()
